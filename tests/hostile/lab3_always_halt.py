# expect: fail halts where
def can_schedule(w, usermode):
    return False
