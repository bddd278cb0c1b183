# kvmlab lab3: the preamble (run before the answer), then the answer cell's starter.
# ruff: noqa: F401
import kvmlab

# --- answer ---
def can_schedule(w, usermode):
    # TODO: this schedules in every context. Replace it with the rule.
    return True
