"""The default executor: one run at a time, in a child of this process."""

from bench.run.launcher import launch


class LocalExecutor:
    name = "local"
    slots = 1  # runs on one machine measure one at a time

    def __init__(self):
        self._queued = {}

    def submit(self, spec: dict, *, out_dir) -> str:
        self._queued[spec["run_id"]] = (spec, out_dir)
        return spec["run_id"]

    def wait(self, handles: list) -> list:
        spec, out_dir = self._queued.pop(handles[0])
        return [(handles[0], launch(spec, out_dir=out_dir))]

    def cancel(self, handles: list) -> None:
        for handle in handles:
            self._queued.pop(handle, None)

    def close(self) -> None:
        pass
