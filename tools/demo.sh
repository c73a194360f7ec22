#!/bin/bash
# The live demo (`make demo`, as root): zonegate enforcing policies/ on real containers.
#
# It starts a private dockerd inside private network, mount and PID namespaces, as the end-to-end
# tests' fixture does (Tests/ZonegateTesting/PrivateDocker.swift): the host's own Docker, if
# any, its ruleset and its /run are never touched, and everything vanishes with the namespaces.
# It imports a tiny busybox image (no registry needed), starts containers in the example zones,
# runs `zonegate run`, tries each flow below with a real connection from inside a container,
# prints what was expected and what happened, shows the live matrix, ends with `zonegate verify
# --probe --report DIR` (the evidence for a PCI DSS assessor, kept in /tmp after the demo), and
# cleans up (also on Ctrl-C or error). Exit status 1 if any observed verdict differs from the
# expected one or verify fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ZONEGATE="$PWD/.build/debug/zonegate"

if [ "$(id -u)" != 0 ]; then
    echo "make demo needs root: it starts a private dockerd and programs nftables (in private namespaces)" >&2
    exit 2
fi
if [ -z "${ZONEGATE_DEMO_PRIVATE:-}" ]; then
    command -v dockerd >/dev/null && [ -x /bin/busybox ] || make -s deps
    [ -x "$ZONEGATE" ] || swift build --product zonegate
    # A PID namespace too, whose init is this script: when it ends, however it ends, the kernel
    # ends dockerd, containerd, the shims and the containers with it.
    exec env ZONEGATE_DEMO_PRIVATE=1 unshare --net --mount --pid --fork --mount-proc --propagation private -- "$0" "$@"
fi

# From here on: our own network, mount and PID namespaces.
WORK=$(mktemp -d /tmp/zonegate-demo-XXXXXX)
SOCK="$WORK/docker.sock"
DOCKER=($([ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker) --config "$WORK/cli" -H "unix://$SOCK")
DOCKERD_PID=""
ZONEGATE_PID=""

cleanup() {
    trap - EXIT INT TERM HUP
    trap '' PIPE  # a closed terminal or pipe must not stop the cleanup
    set +e
    echo "== cleaning up"
    [ -n "$ZONEGATE_PID" ] && kill "$ZONEGATE_PID" 2>/dev/null && wait "$ZONEGATE_PID" 2>/dev/null
    "$ZONEGATE" teardown >/dev/null 2>&1
    if [ -n "$DOCKERD_PID" ]; then
        ids=$("${DOCKER[@]}" ps -aq 2>/dev/null)
        [ -n "$ids" ] && "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1
        "${DOCKER[@]}" network rm demo >/dev/null 2>&1
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$DOCKERD_PID" 2>/dev/null
    fi
    # containerd and its shims name our directory in their command line; nothing else does.
    for pid in $(grep -l -a -F "$WORK" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill "$pid" 2>/dev/null; done
    grep -F " $WORK" /proc/self/mountinfo | cut -d' ' -f5 | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

echo "== a private dockerd (in its own network, mount and PID namespaces)"
# A fresh sysfs shows this network namespace in /sys/class/net (cgroups bound back in place);
# an empty /run keeps containerd's and Docker's runtime files apart from any other engine's.
mkdir -p "$WORK/cgroup" "$WORK/cli" "$WORK/image/bin" "$WORK/policies"
mount --rbind /sys/fs/cgroup "$WORK/cgroup"
mount -t sysfs zonegate-demo-sys /sys
mount --rbind "$WORK/cgroup" /sys/fs/cgroup
umount -l "$WORK/cgroup"
mount -t tmpfs -o size=64m,mode=0755 zonegate-demo-run /run
ip link set lo up
setpriv --pdeathsig KILL dockerd --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    -H "unix://$SOCK" --log-level warn >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 150); do "${DOCKER[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
"${DOCKER[@]}" version --format 'dockerd {{.Server.Version}} answers' || { tail "$WORK/dockerd.log"; exit 2; }

echo "== a tiny image: busybox-static, imported (no registry)"
cp /bin/busybox "$WORK/image/bin/busybox"
for applet in sh nc sleep hostname; do ln -s busybox "$WORK/image/bin/$applet"; done
tar -C "$WORK/image" -c . | "${DOCKER[@]}" import - zonegate-demo:1 >/dev/null

echo "== containers in the example zones of policies/"
"${DOCKER[@]}" network create demo >/dev/null
# Each container answers its name on its ports (busybox nc as a persistent server).
start() { # name ports labels...
    local name=$1 ports=$2; shift 2
    local labels=() expose=() serve=""
    for label in "$@"; do labels+=(--label "$label"); done
    for port in $ports; do expose+=(--expose "$port"); serve+="nc -ll -p $port -e hostname & "; done
    "${DOCKER[@]}" run -d --name "$name" --hostname "$name" --network demo "${labels[@]}" "${expose[@]}" \
        zonegate-demo:1 sh -c "${serve}exec sleep 86400" >/dev/null
    printf '   %-13s %-28s ports %s\n' "$name" "$*" "$ports"
}
start web-1 "80 443" zonegate.zone=web
start api-1 "8080 9100" zonegate.zone=api
start payments-1 "8443 9100" zonegate.zone=payments pci.scope=cde
start db-1 "5432 9100" com.docker.compose.project=shop com.docker.compose.service=db pci.scope=cde
start prometheus-1 "" zonegate.zone=monitoring app=prometheus
start wiki-1 "" zonegate.zone=corp

echo "== zonegate run"
cp policies/*.yaml "$WORK/policies/"
"$ZONEGATE" check --policies "$WORK/policies"
"$ZONEGATE" run --policies "$WORK/policies" --docker-host "unix://$SOCK" --log-format text 2>"$WORK/zonegate.log" &
ZONEGATE_PID=$!
for _ in $(seq 300); do
    grep -q 'ready' "$WORK/zonegate.log" && break
    kill -0 "$ZONEGATE_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q 'ready' "$WORK/zonegate.log" || { echo "zonegate did not get ready:"; tail -20 "$WORK/zonegate.log"; exit 1; }
sed 's/^/   /' "$WORK/zonegate.log" | head -20

echo "== real connections from inside the containers (busybox nc, 2 s timeout)"
address() { "${DOCKER[@]}" inspect -f '{{(index .NetworkSettings.Networks "demo").IPAddress}}' "$1"; }
failures=0
printf '   %-13s %-12s %-6s %-9s %s\n' FROM TO PORT EXPECTED GOT
try() { # from to port expected
    local got answer
    answer=$("${DOCKER[@]}" exec "$1" nc -w 2 "$(address "$2")" "$3" </dev/null 2>/dev/null || true)
    if [ "$answer" = "$2" ]; then got=allow; else got=deny; fi
    local mark=""
    if [ "$got" != "$4" ]; then mark="  <-- differs"; failures=$((failures + 1)); fi
    printf '   %-13s %-12s %-6s %-9s %s%s\n' "$1" "$2" "$3" "$4" "$got" "$mark"
}
try web-1 api-1 8080 allow              # rule web-to-api
try web-1 api-1 9100 deny               # api's ingress is restricted; no rule for 9100 from web
try web-1 payments-1 8443 deny          # only api reaches payments
try api-1 payments-1 8443 allow         # rule api-to-payments
try api-1 db-1 5432 deny                # only payments reaches the cardholder database
try payments-1 db-1 5432 allow          # rule payments-to-database
try payments-1 web-1 80 deny            # payments' egress is restricted
try prometheus-1 payments-1 9100 allow  # rule monitoring-scrapes
try prometheus-1 db-1 5432 deny         # monitoring scrapes 9100 only
try wiki-1 web-1 443 allow              # rule corp-to-web
try wiki-1 api-1 8080 deny              # corp is in audit mode, but api's own ingress denies it

echo "== zonegate matrix for the live host"
"$ZONEGATE" matrix --policies "$WORK/policies" --docker-host "unix://$SOCK" --format table

echo "== why web-1 cannot reach payments-1 (zonegate explain)"
"$ZONEGATE" explain --policies "$WORK/policies" --docker-host "unix://$SOCK" --from web-1 --to payments-1 --port 8443/tcp --format table

echo "== who answers for api-1 -> payments-1, a flow into the CDE (owner, ticket, justification)"
"$ZONEGATE" explain --policies "$WORK/policies" --docker-host "unix://$SOCK" --from api-1 --to payments-1 --port 8443/tcp --format table

if [ "$failures" -ne 0 ]; then
    echo "== $failures observed verdict(s) differ from the policy"
else
    echo "== every observed verdict matches the policy"
fi

# The report outlives the demo's namespaces (which end with it): /tmp is the host's.
REPORT=$(mktemp -d /tmp/zonegate-evidence-XXXXXX)
echo "== proof of isolation: zonegate verify --probe --report $REPORT"
set +e
"$ZONEGATE" verify --policies "$WORK/policies" --docker-host "unix://$SOCK" --probe --report "$REPORT" --format table 2>&1 \
    | sed 's/^/   /'
verified=${PIPESTATUS[0]}
set -e
echo "   the report for an assessor: $REPORT/evidence.md (evidence.json, SHA256SUMS beside it;"
echo "   'zonegate verify-report $REPORT' checks that nothing in it changed)"

if [ "$failures" -ne 0 ]; then exit 1; fi
if [ "$verified" -ne 0 ]; then
    echo "== zonegate verify failed (exit $verified): see $REPORT/evidence.md"
    exit 1
fi
