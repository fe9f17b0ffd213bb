#!/usr/bin/env python3
"""A TCP proxy on loopback that counts the bytes the upstream server (moto) sends to its clients.

    byte-proxy.py LISTEN_PORT UPSTREAM_PORT COUNT_FILE

Listens on 127.0.0.1:LISTEN_PORT and forwards every connection to 127.0.0.1:UPSTREAM_PORT, both ways,
unchanged; the client's end of a connection ends it both ways. When a connection ends it appends one
line to COUNT_FILE: the bytes the upstream sent to the client on it (HTTP status lines, headers and
bodies: everything on the wire) and the bytes the client sent. COUNT_FILE.open always holds the number of connections still open, so that a reader can wait
for the last ones to be written. scripts/bench reads the total of a command's connections as the
bytes it fetched from S3 (it deletes COUNT_FILE before the command; lines are appended with one write
each, so a deleted file starts again empty).
"""
import asyncio, os, sys

listen_port, upstream_port, count_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
open_connections = 0


def write_open():
    with open(count_file + ".open.tmp", "w") as f:
        f.write(f"{open_connections}\n")
    os.replace(count_file + ".open.tmp", count_file + ".open")


async def pipe(reader, writer):
    """Copy reader to writer until end of file, an error, or the writer's side closing; the bytes
    written (bytes read after the receiver went away are not counted)."""
    total = 0
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data or writer.transport.is_closing():
                break
            writer.write(data)
            total += len(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    return total


async def handle(client_reader, client_writer):
    global open_connections
    open_connections += 1
    write_open()
    sent_up = sent_down = 0
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_writer.close()
    else:
        down = asyncio.create_task(pipe(upstream_reader, client_writer))
        # The client's end (it closed, or its process exited) ends the connection: HTTP clients do
        # not half-close, and nothing more can reach them.
        sent_up = await pipe(client_reader, upstream_writer)
        for w in (client_writer, upstream_writer):
            w.close()
        sent_down = await down
    with open(count_file, "a") as f:
        f.write(f"{sent_down} {sent_up}\n")
    open_connections -= 1
    write_open()


async def main():
    write_open()
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
