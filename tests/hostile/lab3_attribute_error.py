# expect: error AttributeError
def can_schedule(w, usermode):
    return w.preemptible()
