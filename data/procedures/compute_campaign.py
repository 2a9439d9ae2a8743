"""Compute job campaign: submit jobs before eclipse, downlink results in the next passes.

At the node's next sunlit pass (the arrays can carry the load), raise the power mode to
PERFORMANCE and submit `jobs` GPU jobs; they run through the eclipse on the battery.
Then, at each of the next `downlink_passes` passes, start the downlink of the results
and check that it runs. A pass in eclipse is skipped for submitting (the battery would
carry the jobs and the night): the procedure waits for a sunlit one.

    groundctl run data/procedures/compute_campaign.py -a node=ODC-07 -a jobs=4 --sim --speed 120
"""

from __future__ import annotations

from datetime import timedelta

from groundctl.procedures import (
    CheckFailed,
    cmd,
    contacts,
    dry_run,
    log,
    now,
    tlm,
    wait,
    wait_check,
    wait_pass,
)


def _wait_for_los(node: str) -> None:
    """Wait until the current contact of `node` is over."""
    plan = [p for p in contacts(node, hours=2) if p.aos <= now() < p.los]
    if plan and not dry_run():
        wait((plan[0].los - now()).total_seconds() + 1)


def main(
    node: str = "ODC-01",
    jobs: int = 3,
    gpu_hours: float = 0.25,
    first_job_id: int = 1000,
    downlink_passes: int = 2,
    max_passes: int = 6,
    min_soc: float = 50.0,
) -> None:
    """Submit `jobs` jobs of `gpu_hours` each to `node`, then downlink the results."""
    upcoming = contacts(node, hours=24)
    log(f"{node}: {len(upcoming)} contacts in the next 24 h")
    for p in upcoming[:3]:
        light = "sunlit" if p.sunlit else "eclipse"
        log(f"  {p.aos:%H:%M:%S}Z-{p.los:%H:%M:%S}Z {p.station} ({light})")

    # 1. A sunlit pass with enough battery to carry the jobs through the night.
    for _attempt in range(max_passes):
        wait_pass(node)
        wait_check(f"{node}.POWER_HK.BATT_SOC >= 0", timeout=10)  # housekeeping is flowing
        sunlit = tlm(f"{node}.POWER_HK.ECLIPSE") == "NO"
        soc = tlm(f"{node}.BATT_SOC", default=0.0) or 0.0
        if dry_run() or (sunlit and soc >= min_soc):
            break
        log(f"{node}: in eclipse or battery low at this pass; waiting for the next")
        _wait_for_los(node)
    else:
        raise CheckFailed(f"{node}: no sunlit pass with battery >= {min_soc} % in {max_passes}")

    cmd(f"{node} SET_POWER_MODE mode=PERFORMANCE")
    budget = int(timedelta(hours=gpu_hours).total_seconds())
    for n in range(jobs):
        cmd(f"{node} SUBMIT_JOB job_id={first_job_id + n} gpu_seconds={budget}s priority=NORMAL")
    wait_check(f"{node}.COMPUTE_HK.JOBS_QUEUED + COMPUTE_HK.JOBS_RUNNING >= 1", timeout=10)
    log(f"{node}: {jobs} jobs submitted ({gpu_hours:g} GPU-h each)")
    _wait_for_los(node)

    # 2. Results down in the next passes.
    for n in range(downlink_passes):
        wait_pass(node)
        wait_check(f"{node}.COMPUTE_HK.RESULTS_PENDING >= 0", timeout=10)
        pending = tlm(f"{node}.RESULTS_PENDING", default=0) or 0
        log(f"{node}: pass {n + 1}: {pending / 1e9:.2f} GB of results pending")
        if pending > 0:
            cmd(f"{node} START_DOWNLINK")
            wait_check(f"{node}.COMMS_HK.DOWNLINK_ACTIVE == 'YES'", timeout=10)
        _wait_for_los(node)
    log(f"{node}: campaign done; {tlm(node + '.JOBS_DONE', default='?')} jobs finished since boot")
