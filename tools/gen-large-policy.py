#!/usr/bin/env python3
"""A large valid policy and an inventory, for measuring compile time (issue 10).

    tools/gen-large-policy.py OUT_DIR [--zones 197] [--rules 2000] [--cidrs 250] [--containers 300] [--seed 1]

writes OUT_DIR/policies/policy.yaml and OUT_DIR/inventory.json: zones selected by `zonegate.zone`,
rules from random zones to random zones or to one of the /32 CIDRs, a few ports each, and
containers spread over the zones on two bridges. Deterministic for a seed.
"""
import argparse, json, os, random

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--zones", type=int, default=197)
    parser.add_argument("--rules", type=int, default=2000)
    parser.add_argument("--cidrs", type=int, default=250)
    parser.add_argument("--containers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    zones = [f"z{i:03d}" for i in range(args.zones)]
    cidrs = [f"203.0.{113 + i // 250}.{1 + i % 250}/32" for i in range(args.cidrs)]
    lines = ["version: 1", "defaults:", "  unzoned: restricted", "  action: drop", "  logDenied: true",
             "  networks: all", "  mode: enforce", "zones:"]
    for index, zone in enumerate(zones):
        ingress = "restricted" if index % 4 != 3 else "open"
        egress = "restricted" if index % 3 == 0 else "open"
        lines += [f"  - name: {zone}", f"    selector: {{ matchLabels: {{ zonegate.zone: {zone} }} }}",
                  f"    ingress: {ingress}", f"    egress: {egress}"]
    lines.append("rules:")
    for index in range(args.rules):
        source = rng.choice(zones)
        if args.cidrs and rng.random() < 0.4:
            destination = "{ cidr: " + rng.choice(cidrs) + " }"
        else:
            destination = rng.choice(zones)
        ports = sorted({rng.choice([22, 53, 80, 443, 5432, 6379, 8080, 8443, 9100]) + rng.randrange(0, 3) for _ in range(rng.randint(1, 3))})
        lines += [f"  - name: r{index:04d}", f"    from: {source}", f"    to: {destination}",
                  "    ports: [" + ", ".join(f"{p}/tcp" for p in ports) + "]"]
    os.makedirs(os.path.join(args.out, "policies"), exist_ok=True)
    with open(os.path.join(args.out, "policies", "policy.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    containers = []
    for index in range(args.containers):
        bridge, subnet = (("br-aaaa", 18) if index % 2 == 0 else ("br-bbbb", 19))
        host = index // 2 + 2
        addresses = [f"172.{subnet}.{host // 250}.{host % 250 + 1}", f"fd00:{subnet}::{host:x}"]
        containers.append({"name": f"c{index:04d}", "labels": {"zonegate.zone": rng.choice(zones)},
                           "addresses": addresses, "ports": ["80/tcp", "443/tcp"],
                           "attachments": [{"bridge": bridge, "port": f"veth{index:04d}", "addresses": addresses}]})
    with open(os.path.join(args.out, "inventory.json"), "w") as f:
        json.dump({"containers": containers, "bridges": ["br-aaaa", "br-bbbb"]}, f, indent=1)

if __name__ == "__main__":
    main()
