"""A TCP proxy that holds back everything it forwards: a PostgreSQL server at a distance.

    python -m benchmarks.delay_proxy --delay-ms 5 --listen 6543 --to 127.0.0.1:5432 &
    python -m benchmarks.compare BEFORE AFTER --url postgresql://postgres@127.0.0.1:6543/postgres

Each chunk read from one side is written to the other `--delay-ms` after it arrived, in order,
in both directions, so a round trip takes twice the delay more. It models latency only: there
is no limit on bandwidth and no TCP window to open, so a large result arrives sooner than over
a real link with the same round trip. asyncio's timers have a resolution of a millisecond here:
`--probe` prints the round trip a `SELECT 1` through the proxy actually takes (5 ms gave
10.4 ms, 1 ms gave 2.2-2.6 ms). The proxy costs the machine some CPU too, so compare checkouts
through it side by side, not against figures taken without it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence

_CHUNK = 1 << 16


async def _forward(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Copy `reader` to `writer`, each chunk `delay` seconds after it arrived; at the end of
    `reader`, pass the end on (a half-close), and leave closing to the caller."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(_CHUNK):
            queue.put_nowait((time.monotonic() + delay, data))
    finally:
        queue.put_nowait((time.monotonic() + delay, b""))
        await sender


async def _serve(listen: int, host: str, port: int, delay: float) -> None:
    async def connected(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError as error:
            print(f"delay_proxy: cannot reach {host}:{port}: {error}", file=sys.stderr)
            client_w.close()
            return
        try:
            await asyncio.gather(
                _forward(client_r, server_w, delay), _forward(server_r, client_w, delay)
            )
        except ConnectionError:
            pass  # one side went away mid-stream: the other is closed below
        finally:
            client_w.close()
            server_w.close()

    server = await asyncio.start_server(connected, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def probe(url: str, rounds: int = 20) -> float:
    """The median round trip of `SELECT 1` on `url`, in milliseconds."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            connection.exec_driver_sql("SELECT 1").all()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, help="one way, in each direction")
    parser.add_argument("--listen", type=int, default=6543, help="port on 127.0.0.1")
    parser.add_argument("--to", default="127.0.0.1:5432", help="the server, HOST:PORT")
    parser.add_argument("--probe", metavar="URL", help="print the round trip through URL; exit")
    args = parser.parse_args(argv)
    if args.probe:
        print(f"{probe(args.probe):.2f} ms")
        return
    if args.delay_ms is None:
        parser.error("--delay-ms is required to run the proxy")
    host, _, port = args.to.rpartition(":")
    asyncio.run(_serve(args.listen, host.strip("[]"), int(port), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
