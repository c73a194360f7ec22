/// The Python programs behind the probes, run with Debian's `python3 -I -c`. Every loop
/// in them is bounded by a count or a deadline.
enum ProbeScripts {
    /// Exit status of a client whose exchange did not complete (refused, timed out, cut).
    /// Any other non-zero status is a harness failure, never a verdict on the firewall.
    static let noExchangeStatus: Int32 = 3

    /// argv: port lifetime-seconds. TCP (line echo per connection) and UDP (datagram
    /// echo) on 0.0.0.0 and ::, replies prefixed "echo ". Prints "ready" once listening,
    /// then "peer tcp|udp ADDRESS PORT" for each connection or datagram received.
    static let server = #"""
        import select, socket, sys, threading, time
        port, deadline = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])
        print_lock = threading.Lock()
        def say(*words):
            with print_lock:
                print(*words, flush=True)
        def bound(family, kind, address):
            s = socket.socket(family, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((address, port))
            if kind == socket.SOCK_STREAM:
                s.listen(128)
            return s
        def serve_stream(conn, peer):
            say("peer", "tcp", peer[0], peer[1])
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                for line in conn.makefile("rb"):
                    conn.sendall(b"echo " + line)
            except OSError:
                pass
            conn.close()
        sockets = [bound(family, kind, address)
                   for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::"))
                   for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)]
        say("ready")
        while (left := deadline - time.monotonic()) > 0:
            for s in select.select(sockets, [], [], min(left, 0.5))[0]:
                if s.type == socket.SOCK_STREAM:
                    conn, peer = s.accept()
                    threading.Thread(target=serve_stream, args=(conn, peer), daemon=True).start()
                else:
                    data, peer = s.recvfrom(65535)
                    say("peer", "udp", peer[0], peer[1])
                    s.sendto(b"echo " + data, peer)
        """#

    /// Python: `pump(source, sink)` copies one direction of a relayed connection until either
    /// end closes, then shuts both down (the relays' shared part).
    static let pump = #"""
        def pump(source, sink):
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        """#

    /// argv: port target-address target-port lifetime-seconds. A stand-in for Docker's userland
    /// proxy: accepts TCP on 0.0.0.0 and :: and relays each connection over a connection of its
    /// own to the target. Prints "ready" once listening, then "relayed" or "unreachable" for each.
    static let relay = #"""
        import select, socket, sys, threading, time
        port, target, target_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        deadline = time.monotonic() + float(sys.argv[4])
        def left():
            return max(0.1, deadline - time.monotonic())
        \#(pump)
        def relay(client):
            try:
                onward = socket.create_connection((target, target_port), timeout=1.0)
            except OSError:
                print("unreachable", flush=True)
                client.close()
                return
            print("relayed", flush=True)
            for s in (client, onward):
                s.settimeout(left())
            threading.Thread(target=pump, args=(onward, client), daemon=True).start()
            pump(client, onward)
        listeners = []
        for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((address, port))
            s.listen(128)
            listeners.append(s)
        print("ready", flush=True)
        while (remaining := deadline - time.monotonic()) > 0:
            for s in select.select(listeners, [], [], min(remaining, 0.5))[0]:
                client, _ = s.accept()
                threading.Thread(target=relay, args=(client,), daemon=True).start()
        """#

    /// argv: mode address port timeout-seconds [mode arguments]. Modes:
    /// - `tcp`, `udp`: one exchange; exit 0 when the echo came back.
    /// - `spoofed-udp SOURCE`: one datagram sent from an address this namespace does not own.
    /// - `hold DURATION INTERVAL`: one TCP connection exchanging a line every INTERVAL for
    ///   DURATION; prints "up", "ok N", then "done N" or "cut SECONDS REASON".
    /// - `steady-tcp|steady-udp COUNT INTERVAL`: COUNT requests, one per INTERVAL (TCP: a
    ///   new connection each); prints "result ANSWERED MISSING,LIST".
    static let client = #"""
        import socket, sys, threading, time
        mode, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        def tcp_exchange(payload=b"probe"):
            with socket.create_connection((host, port), timeout=timeout) as s:
                s.sendall(payload + b"\n")
                return s.makefile("rb").readline() == b"echo " + payload + b"\n"
        def udp_exchange():
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.sendto(b"probe\n", (host, port))
                return s.recvfrom(65535)[0] == b"echo probe\n"
        def spoofed_udp(source):
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                # IP_TRANSPARENT (19) / IPV6_TRANSPARENT (75) allow binding a foreign address.
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, 75, 1)
                else:
                    s.setsockopt(socket.IPPROTO_IP, 19, 1)
                s.bind((source, 0))
                s.sendto(b"spoofed\n", (host, port))
            return True
        def hold(duration, interval):
            start = time.monotonic()
            elapsed = lambda: "%.3f" % (time.monotonic() - start)
            try:
                s = socket.create_connection((host, port), timeout=timeout)
            except OSError as error:
                print("cut", elapsed(), "connect", type(error).__name__, flush=True)
                return False
            replies = s.makefile("rb")
            n = 0
            while time.monotonic() - start < duration:
                try:
                    s.sendall(b"seq %d\n" % n)
                    if replies.readline() != b"echo seq %d\n" % n:
                        print("cut", elapsed(), "closed", flush=True)
                        return False
                except OSError as error:
                    print("cut", elapsed(), type(error).__name__, flush=True)
                    return False
                print("up" if n == 0 else "ok", n, flush=True)
                n += 1
                time.sleep(interval)
            s.close()
            print("done", n, flush=True)
            return True
        def steady_udp(count, interval):
            answered = set()
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                start = time.monotonic()
                for i in range(count):
                    s.sendto(b"seq %d\n" % i, (host, port))
                    # Collect replies until the next send is due; after the last, one timeout.
                    until = start + (i + 1) * interval if i + 1 < count else time.monotonic() + timeout
                    while (left := until - time.monotonic()) > 0:
                        s.settimeout(left)
                        try:
                            data = s.recv(65535)
                        except (socket.timeout, ConnectionRefusedError):
                            break
                        if data.startswith(b"echo seq "):
                            answered.add(int(data[9:]))
            return answered
        def steady_tcp(count, interval):
            answered, threads = set(), []
            def one(i):
                try:
                    if tcp_exchange(b"seq %d" % i):
                        answered.add(i)
                except OSError:
                    pass
            start = time.monotonic()
            for i in range(count):
                time.sleep(max(0, start + i * interval - time.monotonic()))
                threads.append(threading.Thread(target=one, args=(i,)))
                threads[-1].start()
            for thread in threads:
                thread.join()
            return answered
        def steady(run, count, interval):
            answered = run(count, interval)
            missing = [str(i) for i in range(count) if i not in answered]
            print("result", len(answered), ",".join(missing) or "-", flush=True)
            return True
        modes = {
            "tcp": lambda: tcp_exchange(),
            "udp": udp_exchange,
            "spoofed-udp": lambda: spoofed_udp(sys.argv[5]),
            "hold": lambda: hold(float(sys.argv[5]), float(sys.argv[6])),
            "steady-tcp": lambda: steady(steady_tcp, int(sys.argv[5]), float(sys.argv[6])),
            "steady-udp": lambda: steady(steady_udp, int(sys.argv[5]), float(sys.argv[6])),
        }
        try:
            completed = modes[mode]()
        except OSError as error:
            print(type(error).__name__, error, file=sys.stderr)
            completed = False
        sys.exit(0 if completed else 3)
        """#
}
