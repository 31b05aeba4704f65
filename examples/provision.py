#!/usr/bin/env python3
"""Provision one DPU through the dpu-ztp operator API, from outside TypeScript.

Uses only `requests` (Debian: python3-requests). The flow a fleet pipeline runs:

  1. register the DPU's BMC   PUT  /api/v1/bmcs/{id}        (password sent once, never returned)
  2. register the device      PUT  /api/v1/devices/{serial} (its profile and BMC), then a guarded
                                   update: GET gives an ETag, PUT with If-Match (412 on a lost update)
  3. start a provisioning job POST /api/v1/jobs             (Idempotency-Key: a retried POST is safe)
  4. wait for it              GET  /api/v1/jobs/{id}        (polling; 429/503 honour Retry-After)

Exit status: 0 when the job succeeded, 1 when it ended otherwise, 2 on a usage or API error.

  examples/provision.py --api http://127.0.0.1:8080 --token-file data/admin-token \\
      --serial DPU-0001 --profile bf3-ubuntu --bmc-id bmc-r3-07 \\
      --bmc-address https://10.0.0.17 --bmc-username admin --bmc-password-file bmc.pw \\
      [--bmc-ca bmc-ca.pem] [--label rack=r3] [--timeout 1800]
"""
import argparse
import sys
import time
import uuid

import requests

FINISHED = {"succeeded", "failed", "cancelled"}


class ApiError(Exception):
    """A problem+json answer: its stable `code`, HTTP status and detail."""

    def __init__(self, status, code, detail):
        super().__init__(f"{code} ({status}): {detail}")
        self.status, self.code, self.detail = status, code, detail


class Api:
    def __init__(self, base, token, timeout=30):
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def request(self, method, path, *, json=None, headers=None, retries=10):
        """One call; 429 and 503 (the service shedding load) are retried after Retry-After.
        Only requests that are safe to repeat come here with retries: GET and PUT always,
        POST only under an Idempotency-Key."""
        for attempt in range(retries + 1):
            r = self.session.request(
                method, self.base + path, json=json, headers=headers or {}, timeout=self.timeout
            )
            if r.status_code in (429, 503) and attempt < retries:
                time.sleep(min(float(r.headers.get("Retry-After", "1") or 1), 10))
                continue
            if r.status_code >= 400:
                try:
                    p = r.json()
                except ValueError:
                    p = {}
                raise ApiError(r.status_code, p.get("code", f"HTTP_{r.status_code}"), p.get("detail", r.text[:200]))
            return r
        raise AssertionError("unreachable")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--serial", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--bmc-id", required=True)
    ap.add_argument("--bmc-address", required=True, help="https://host[:port] of the DPU's BMC")
    ap.add_argument("--bmc-username", required=True)
    ap.add_argument("--bmc-password-file", required=True)
    ap.add_argument("--bmc-ca", help="PEM file the BMC's TLS certificate chains to")
    ap.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job")
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args(argv)
    labels = {}
    for kv in a.label:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            ap.error(f"--label must be KEY=VALUE, got {kv}")
        labels[k] = v

    api = Api(a.api, read(a.token_file).strip())
    try:
        bmc = {
            "address": a.bmc_address,
            "username": a.bmc_username,
            "password": read(a.bmc_password_file).strip(),
        }
        if a.bmc_ca:
            bmc["caCertificate"] = read(a.bmc_ca)
        r = api.request("PUT", f"/api/v1/bmcs/{a.bmc_id}", json=bmc).json()
        print(f"bmc {r['id']}: {r['address']} (password set: {r['passwordSet']})")

        api.request("PUT", f"/api/v1/devices/{a.serial}", json={"profile": a.profile, "bmc": a.bmc_id})
        if labels:
            # A guarded update: only if nobody changed the device since we read it.
            etag = api.request("GET", f"/api/v1/devices/{a.serial}").headers["ETag"]
            api.request(
                "PUT",
                f"/api/v1/devices/{a.serial}",
                json={"profile": a.profile, "bmc": a.bmc_id, "labels": labels},
                headers={"If-Match": etag},
            )
        d = api.request("GET", f"/api/v1/devices/{a.serial}").json()
        print(f"device {d['serial']}: state {d['state']}, profile {d.get('profile')}, bmc {d.get('bmc')}")

        # The same key on a retry of this POST gives back the same job, never a second one.
        key = str(uuid.uuid4())
        job = api.request(
            "POST",
            "/api/v1/jobs",
            json={"kind": "provision", "devices": [a.serial]},
            headers={"Idempotency-Key": key},
        ).json()
        print(f"job {job['id']}: {job['state']}")

        end = time.monotonic() + a.timeout
        seen = None
        while True:
            job = api.request("GET", f"/api/v1/jobs/{job['id']}").json()
            for dev in job["devices"]:
                line = f"  {dev['serial']} {dev['state']} {dev['step']} attempt {dev['attempt']}"
                if line != seen:
                    print(line, flush=True)
                    seen = line
            if job["state"] in FINISHED:
                break
            if time.monotonic() > end:
                print(f"job {job['id']} still {job['state']} after {a.timeout:.0f} s", file=sys.stderr)
                return 1
            time.sleep(a.interval)
        for dev in job["devices"]:
            if dev.get("error"):
                err = dev["error"]
                print(f"  {dev['serial']} stopped at {dev['step']}: {err['code']}: {err['message']}")
        print(f"job {job['id']}: {job['state']}")
        return 0 if job["state"] == "succeeded" else 1
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except requests.RequestException as e:
        print(f"error: the API did not answer: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
