"""The baseline of the end-to-end benchmark: a straightforward ISO 8583 host.

asyncio streams, pyiso8583 (the reference codec, pure Python) and redis.asyncio with a
BlockingConnectionPool; each request is decoded, runs the SAME redeem Lua script as tillgate
(EVALSHA, one call per request, many requests concurrently), and is answered as soon as its call
returns. No batching, no compiled codec, no request-key claim phase: what a competent first
version looks like. Usage: python bench/baseline_host.py PORT REDIS_URL
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import sys

import iso8583
import msgpack
import redis.asyncio as aioredis

from gateway.ledger import cards
from gateway.ledger.store import load_scripts
from protocols.isospec import SPEC_ASCII


async def main(port: int, redis_url: str) -> None:
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64)
    client = aioredis.Redis(connection_pool=pool)
    script = load_scripts()["redeem"]
    redeem = client.register_script(script.source)

    async def handle(fields: dict) -> dict:
        card = fields["2"]
        cid = cards.card_id(card)
        key = f"I2:{fields['41']}:{fields['42']}:{fields['11']}:{fields['7']}"
        now = dt.datetime.now(dt.UTC)
        params = {"now": int(now.timestamp()), "today": int(now.strftime("%Y%m%d")),
                  "ttl": 35 * 86400, "ch": cid, "term": fields["41"], "merch": fields["42"],
                  "key": key, "op": "redeem", "amount": int(fields["4"]),
                  "auth": secrets.token_hex(3).upper(), "pinreq": 0, "pin": "", "tries": 3,
                  "lock": 0, "maxbal": 0, "window": 86400, "exp": 0, "faces": [], "partial": 0,
                  "advice": 0, "points": 0}
        packed, _fresh = await redeem(keys=cards.card_keys(cid, key, None),
                                      args=[msgpack.packb(params)])
        res = msgpack.unpackb(packed)
        response = {k: fields[k] for k in ("3", "4", "7", "11", "41", "42") if k in fields}
        response["t"] = "0210"
        response["39"] = res["rc"]
        if res.get("auth"):
            response["38"] = res["auth"]
        return response

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = asyncio.Lock()

        async def answer(body: bytes) -> None:
            fields, _ = iso8583.decode(body, SPEC_ASCII)
            response = await handle(fields)
            data, _ = iso8583.encode(response, SPEC_ASCII)
            async with lock:
                writer.write(len(data).to_bytes(2, "big") + bytes(data))

        tasks = set()
        try:
            while True:
                header = await reader.readexactly(2)
                body = await reader.readexactly(int.from_bytes(header, "big"))
                task = asyncio.create_task(answer(body))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
