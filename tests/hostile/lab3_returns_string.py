# expect: error TypeError
def can_schedule(w, usermode):
    return "schedule" if usermode else "halt"
