# expect: submission syntax error
def can_schedule(w, usermode)
    return False
