#!/usr/bin/env python3
"""Generates large policies for timing `zonegate check` (see docs/prover.md).

usage: tools/gen-policy.py KIND DIR [--zones N] [--rules N] [--assertions N] [--cidrs N] [--values N] [--seed N]
KIND: large (zones, rules, /32 CIDRs, assertions of both kinds), inlists (In lists of --values
values), notin (a selector of --values NotIn expressions), matchlabels (a zone of --values
matchLabels next to an unlabelled zone). Writes DIR/policy.yaml (JSON, which is YAML).
"""
import argparse, json, os, random

p = argparse.ArgumentParser()
p.add_argument("kind", choices=["large", "inlists", "notin", "matchlabels"])
p.add_argument("dir")
p.add_argument("--zones", type=int, default=200)
p.add_argument("--rules", type=int, default=2000)
p.add_argument("--assertions", type=int, default=100)
p.add_argument("--cidrs", type=int, default=250)
p.add_argument("--values", type=int, default=1000)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
rnd = random.Random(a.seed)
ports = ["80/tcp", "443/tcp", "8000-8100/tcp", "53/udp", "5432/tcp", "icmp", "9000-9999/tcp"]
zones, rules, asserts = [], [], []

def zone(name, selector=None, **sides):
    z = {"name": name, **sides}
    if selector is not None:
        z["selector"] = selector
    zones.append(z)

if a.kind == "large":
    for i in range(a.zones):
        kind = i % 4
        sel = None if kind == 0 else {"matchLabels": {"tier": f"t{i % 17}", "team": f"team{i % 23}"}} if kind == 1 else \
            {"matchExpressions": [{"key": "env", "operator": "In", "values": [f"e{i % 5}", f"e{(i + 1) % 5}"]},
                                  {"key": "app", "operator": "In", "values": [f"a{i}"]}]} if kind == 2 else \
            {"matchLabels": {"app": f"a{i}"}, "matchExpressions": [{"key": "pci", "operator": "NotIn", "values": ["no"]}]}
        zone(f"z{i}", sel, ingress=rnd.choice(["restricted", "restricted", "open"]),
             egress=rnd.choice(["open", "open", "restricted"]), **({"mode": "audit"} if i % 29 == 0 else {}))
    cidrs = [{"cidr": f"198.51.{i // 250}.{i % 250 + 1}/32"} for i in range(a.cidrs)]
    names = [z["name"] for z in zones]
    for i in range(a.rules):
        def end():
            r = rnd.random()
            return rnd.choice(cidrs) if r < 0.1 and cidrs else "world" if r < 0.13 else "host" if r < 0.15 else rnd.choice(names)
        rules.append({"name": f"r{i}", "from": [end() for _ in range(rnd.randint(1, 2))],
                      "to": [end() for _ in range(rnd.randint(1, 2))], "ports": rnd.sample(ports, rnd.randint(1, 2))})
    for i in range(a.assertions):
        if i % 2:
            r = rnd.choice(rules)
            asserts.append({"name": f"a{i}", "allow": {"from": r["from"][0], "to": r["to"][0], "ports": r["ports"][:1]}})
        else:
            asserts.append({"name": f"a{i}", "deny": {"from": rnd.choice(names), "to": rnd.choice(names + ["world"])}})
elif a.kind == "inlists":
    n = a.values
    for i in range(8):
        zone(f"z{i}", {"matchExpressions": [{"key": "app", "operator": "In", "values": [f"v{j}" for j in range(i * n // 2, i * n // 2 + n)]},
                                            {"key": "team", "operator": "NotIn", "values": [f"t{j}" for j in range(i, i + n)]}]},
             egress="restricted" if i % 2 else "open")
    for i in range(8):
        rules.append({"name": f"r{i}", "from": f"z{i}", "to": f"z{(i + 1) % 8}", "ports": ["443/tcp"]})
    for i in range(8):
        asserts.append({"name": f"deny{i}", "deny": {"from": f"z{i}", "to": f"z{(i + 3) % 8}"}})
        asserts.append({"name": f"allow{i}", "allow": {"from": f"z{i}", "to": f"z{(i + 1) % 8}", "ports": ["443/tcp"]}})
elif a.kind == "notin":
    exprs = [{"key": f"k{i}", "operator": "NotIn", "values": [f"v{i}", f"w{i}"]} for i in range(a.values)]
    zone("many", {"matchExpressions": exprs}, egress="restricted")
    zone("some", {"matchExpressions": [{"key": f"k{i}", "operator": "In", "values": [f"v{i}", f"x{i}"]} for i in range(0, a.values, 2)]},
         ingress="open")
    zone("db")
    rules.append({"name": "many-db", "from": "many", "to": "db", "ports": ["5432/tcp"]})
    asserts += [{"name": "many-not-some", "deny": {"from": "many", "to": "some"}},
                {"name": "some-not-many", "deny": {"from": "some", "to": "many"}},
                {"name": "many-reaches-db", "allow": {"from": "many", "to": "db", "ports": ["5432/tcp"]}},
                {"name": "some-db", "allow": {"from": "some", "to": "db", "ports": ["5432/tcp"]}}]
else:
    zone("big", {"matchLabels": {f"key{i}": f"value{i}" for i in range(a.values)}}, egress="restricted")
    zone("plain")
    zone("open", {"matchLabels": {"key1": "value1"}}, ingress="open")
    rules.append({"name": "big-plain", "from": "big", "to": "plain", "ports": ["443/tcp"]})
    asserts += [{"name": "plain-not-big", "deny": {"from": "plain", "to": "big"}},
                {"name": "big-not-open", "deny": {"from": "big", "to": "open"}},
                {"name": "big-reaches-plain", "allow": {"from": "big", "to": "plain", "ports": ["443/tcp"]}}]

os.makedirs(a.dir, exist_ok=True)
with open(os.path.join(a.dir, "policy.yaml"), "w") as f:
    json.dump({"version": 1, "zones": zones, "rules": rules, "assertions": asserts}, f, indent=1)
