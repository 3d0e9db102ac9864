"""An example nverify generator: proposes assembly snippets from a file, one per block
separated by a line `---`, until one is proven. It keeps the counterexamples the verifier
returns, to show what a real generator would learn from."""

from generators import Candidate, Feedback, Task
from generators.hand import assemble


class Snippets:
    name = "snippets"
    version = "0.1.0"
    description = "tries assembly snippets from --from FILE (separated by '---') in order"

    def __init__(self):
        self.queue: list[str] = []
        self.counterexamples: list[dict] = []
        self.proposed = 0
        self.arch = "x86_64"

    def start(self, task: Task) -> None:
        with open(task.source) as f:
            self.queue = [s for s in f.read().split("\n---\n") if s.strip()]
        self.arch = task.arch

    def propose(self):
        if not self.queue:
            return None
        text = self.queue.pop(0)
        self.proposed += 1
        return Candidate(assemble(self.arch, text), note=text)

    def feedback(self, candidate: Candidate, fb: Feedback) -> None:
        if fb.verdict == "proven":
            self.queue.clear()          # done: nothing better to offer
        elif fb.inputs:
            self.counterexamples.append(fb.inputs)

    def stats(self) -> dict:
        return {"proposals": self.proposed, "counterexamples": len(self.counterexamples)}
