# expect: error KeyError
class MyWaker(WakerOriginal):
    @line("n = _find_apf_task(b, token);")
    def find(self, w, t):
        t.n = find_apf_task(w, self.token(t))
        w["bucket"]
