"""A report asked for with bad parameters: the CLI says it in one line and exits 2, the admin
API answers 400. `param` is the parameter's name (`from`, `merchant`, ...), for both to show
(the CLI as `--from`, the API as `from`)."""

from __future__ import annotations


class ReportError(ValueError):
    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message
