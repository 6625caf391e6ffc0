#!/usr/bin/env python3
"""The ingest workload as a seller would script it: standard library only.

Reads the Ozon and Xiaohongshu list pages that cancelwatch-bench generated,
computes each request's deadline, keeps a dict of tracked requests and checks
the shipped rules (rules/*.rules) written as plain Python conditions.

    python3 benchmarks/ingest.py PAGES_DIR [--repeat N] [--parse-only]

Prints one JSON line: the best time of N passes, requests seen, rule matches.
"""
import json
import sys
import time
from datetime import datetime, timedelta, timezone


def ozon_requests(page, source):
    for item in page.get("result") or []:
        state = item["state"]["state"]
        if state != "ON_APPROVAL":
            continue
        deadline = datetime.fromisoformat(item["auto_approve_date"].replace("Z", "+00:00"))
        created = datetime.fromisoformat(item["cancelled_at"].replace("Z", "+00:00"))
        yield {
            "marketplace": "ozon", "source": source, "id": str(item["cancellation_id"]),
            "order": item["posting_number"], "state": "pending", "raw_state": state,
            "initiator": item["cancellation_initiator"], "reason": item["cancellation_reason"]["name"],
            "created": created, "deadline": deadline, "raw": item,
        }


def red_requests(page, source, sent_at):
    for item in page["data"]["package_list"] or []:
        if item.get("status") != "unaudited":
            continue
        deadline = sent_at + timedelta(milliseconds=item["max_audit_time"])
        yield {
            "marketplace": "xiaohongshu", "source": source,
            "id": "%s@%d" % (item["package_id"], item["cancel_time"]), "order": item["package_id"],
            "state": "pending", "raw_state": item["status"], "initiator": "",
            "reason": item["cancel_reason"],
            "created": datetime.fromtimestamp(item["cancel_time"], timezone.utc),
            "deadline": deadline, "raw": item,
        }


def rules_matching(r, now):
    """rules/deadlines.rules and rules/ozon.rules."""
    remaining = (r["deadline"] - now).total_seconds()
    pending = r["state"] == "pending"
    n = 0
    if pending and remaining <= 24 * 3600 and remaining > 3 * 3600:  # heads-up
        n += 1
    if pending and remaining <= 3 * 3600 and remaining > 30 * 60:  # escalation
        n += 1
    if pending and remaining <= 30 * 60:  # final-warning
        n += 1
    if r["marketplace"] == "ozon" and r["initiator"] in ["CLIENT"] and remaining <= 24 * 3600:  # ozon-client-cancels
        n += 1
    return n


def ingest(sources, now):
    tracked = {}
    requests = matches = 0
    for source in sources:
        for body in source["bodies"]:
            page = json.loads(body)
            if source["marketplace"] == "ozon":
                found = ozon_requests(page, source["name"])
            else:
                found = red_requests(page, source["name"], now)
            for r in found:
                key = (r["source"], r["id"])
                known = tracked.get(key)
                if known is None:
                    tracked[key] = {"request": r, "status": "pending", "first_seen": now, "last_seen": now}
                else:
                    known["request"] = r
                    known["last_seen"] = now
                matches += rules_matching(r, now)
                requests += 1
    return requests, matches


def parse_only(sources):
    n = 0
    for source in sources:
        for body in source["bodies"]:
            n += len(json.loads(body))
    return n


def main():
    directory = sys.argv[1]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5
    with open(directory + "/meta.json") as f:
        meta = json.load(f)
    now = datetime.fromtimestamp(meta["now"], timezone.utc)
    sources = []
    for s in meta["sources"]:
        bodies = []
        for name in s["files"]:
            with open(directory + "/" + name, "rb") as f:
                bodies.append(f.read())
        sources.append({"name": s["name"], "marketplace": s["marketplace"], "bodies": bodies})
    best = None
    requests = matches = 0
    for _ in range(repeat):
        start = time.perf_counter()
        if "--parse-only" in sys.argv:
            parse_only(sources)
        else:
            requests, matches = ingest(sources, now)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    print(json.dumps({"best_seconds": best, "requests": requests, "matches": matches}))


if __name__ == "__main__":
    main()
