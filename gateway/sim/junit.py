"""Scenario results as JUnit XML (one <testsuite> per scenario, one <testcase> per step), the
format CI systems (GitLab, Jenkins, GitHub actions) show as test reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from gateway.sim.scenario import ScenarioResult


def junit_xml(results: list[ScenarioResult]) -> str:
    root = ET.Element("testsuites", name="tillgate sim")
    total = failures = skipped = 0
    for result in results:
        scenario = result.scenario
        suite = ET.SubElement(root, "testsuite", name=scenario.name, file=scenario.path,
                              tests=str(len(result.steps) or 1), failures=str(result.failures),
                              errors="0", skipped="1" if result.skipped else "0",
                              time=f"{result.seconds:.3f}")
        if result.skipped:
            case = ET.SubElement(suite, "testcase", classname=scenario.name, name="scenario")
            ET.SubElement(case, "skipped", message=result.skipped)
            skipped += 1
            total += 1
            continue
        for step in result.steps:
            case = ET.SubElement(suite, "testcase", classname=scenario.name,
                                 name=f"{step.index:03d} {step.title}",
                                 time=f"{step.seconds:.3f}")
            if not step.passed:
                failure = ET.SubElement(case, "failure", message=step.reason)
                failure.text = step.reason
            elif step.summary:
                ET.SubElement(case, "system-out").text = step.summary
        total += len(result.steps)
        failures += result.failures
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_junit(results: list[ScenarioResult], path: str | Path) -> None:
    Path(path).write_text(junit_xml(results) + "\n")
