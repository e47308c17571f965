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
from typing import Optional

def _response(body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


_ANSWER = _response(b"{}")
# Path suffix -> whole response, for the calls whose answer the client reads (the trace
# export asks /version and reads the start-trace answer's tags); the rest get _ANSWER.
_ROUTES: dict[bytes, bytes] = {}


def _answer_for(request_line: bytes) -> bytes:
    parts = request_line.split(b" ")
    path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
    for suffix, answer in _ROUTES.items():
        if path.endswith(suffix):
            return answer
    return _ANSWER


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
            writer.write(_answer_for(head.split(b"\r\n", 1)[0]) if _ROUTES else _ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def _serve(sock: socket.socket, body: bytes, routes: dict) -> None:
    global _ANSWER
    _ANSWER = _response(body)
    _ROUTES.update({suffix: _response(answer, kind) for suffix, (answer, kind) in routes.items()})

    async def main() -> None:
        server = await asyncio.start_server(_answer, sock=sock)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


NULL = "null-server"  # its name among the servers of a figure: the client alone


class NullServer:
    """The null server in a child process, on a free loopback port, while in ``with``;
    it answers every request with ``body``, or, for a path ending in a key of ``routes``,
    with that key's (body, content type)."""

    def __init__(self, body: bytes = b"{}", routes: Optional[dict] = None) -> None:
        self.body, self.routes = body, dict(routes or {})

    def __enter__(self) -> "NullServer":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._proc = multiprocessing.get_context("fork").Process(target=_serve, args=(sock, self.body, self.routes),
                                                                   daemon=True)
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
