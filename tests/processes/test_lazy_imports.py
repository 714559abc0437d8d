"""Heavy libraries stay out of processes that do not use them (the idle demo station must
stay under 80 MB RSS). Each check runs in a fresh interpreter: this test process has long
imported everything."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_jinja2_is_imported_only_when_a_template_is_compiled() -> None:
    _run(
        """
        import sys

        import station.processes.engine
        import station.processes.templating as t

        assert "jinja2" not in sys.modules, "importing the engine loaded jinja2"
        assert t.render({"a": "plain", "b": [1, "x"]}, {}) == {"a": "plain", "b": [1, "x"]}
        t.validate_template({"a": "no markers"})
        assert "jinja2" not in sys.modules, "a string without markers loaded jinja2"
        assert t.render({"a": "{{ 1 }}"}, {}) == {"a": 1}
        assert "jinja2" in sys.modules
        """
    )


@pytest.mark.parametrize("module", ["station.cli.main", "station.cli.process_cmd"])
def test_the_cli_does_not_import_yaml_until_it_reads_or_shows_a_definition(module: str) -> None:
    _run(
        f"""
        import sys

        import {module}

        assert "yaml" not in sys.modules, "importing {module} loaded yaml"
        """
    )
