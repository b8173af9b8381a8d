"""The checkpointer contract suite's fixtures (`cp` over every backend), for the tools tests."""

from tests.checkpointer.conftest import backend, cp, spec

__all__ = ["backend", "cp", "spec"]
