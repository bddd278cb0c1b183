# expect: error did not return
def can_schedule(w, usermode):
    while True:
        pass
