# expect: error did not return
class MyWaker(WakerOriginal):
    @line("n = _find_apf_task(b, token);")
    def find(self, w, t):
        while t.n is None:
            pass
