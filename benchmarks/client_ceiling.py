"""How fast can the unmodified MLflow client go at all? Workloads 1 and 2 of the
benchmark against a null server that answers every request at once with ``{}``
(asyncio, keep-alive): no server can be faster, so these rates bound any
"ours / reference" ratio measured with the same client on this machine. For the
reads (search pages, a metric history) the null server replays, at once, the bytes
our server answered to the same request: the client's own cost of that answer.
The benchmark runs the null server interleaved with the real ones (the "client
alone" column); this module can also be run by itself:

    .venv/bin/python -m benchmarks.client_ceiling [--calls 2000] [--batches 50]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from time import perf_counter, process_time

def _response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


_ANSWER = _response(b"{}")


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(_ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def _serve(sock: socket.socket, body: bytes) -> None:
    global _ANSWER
    _ANSWER = _response(body)

    async def main() -> None:
        server = await asyncio.start_server(_answer, sock=sock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class NullServer:
    """The null server in a child process, on a free loopback port, while in ``with``;
    it answers every request with ``body``."""

    def __init__(self, body: bytes = b"{}") -> None:
        self.body = body

    def __enter__(self) -> "NullServer":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._proc = multiprocessing.get_context("fork").Process(target=_serve, args=(sock, self.body), daemon=True)
        self._proc.start()
        sock.close()
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.join(5)


def measure(calls: int, batches: int) -> dict[str, tuple[float, float]]:
    """{workload: (rate, client CPU ms per operation)}."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    with NullServer() as server:
        client = MlflowClient(server.url)
        run = "0" * 32
        out = {}
        t0, c0 = perf_counter(), process_time()
        for i in range(calls):
            client.log_metric(run, "loss", 1.0 / (1 + i), timestamp=1_700_000_000_000 + i, step=i)
        wall, cpu = perf_counter() - t0, process_time() - c0
        out["log_metric (calls/s)"] = (calls / wall, cpu / calls * 1000)
        t0, c0 = perf_counter(), process_time()
        for b in range(batches):
            metrics = [Metric(f"m{j % 100}", j * 0.001, 1_700_000_000_000 + b * 10 + j // 100, b * 10 + j // 100)
                       for j in range(1000)]
            client.log_batch(run, metrics=metrics)
        wall, cpu = perf_counter() - t0, process_time() - c0
        out["log_batch of 1,000 metrics (metrics/s)"] = (batches * 1000 / wall, cpu / batches * 1000)
        return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client_ceiling", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"MLflow client against a null server, {time.strftime('%Y-%m-%d')}:")
    print("| workload | rate (client alone) | client CPU per operation |")
    print("|---|---|---|")
    for name, (rate, cpu_ms) in measure(args.calls, args.batches).items():
        print(f"| {name} | {rate:,.0f} | {cpu_ms:.2f} ms |")


if __name__ == "__main__":
    main()
