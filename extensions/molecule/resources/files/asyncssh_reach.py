"""Connect with asyncssh's default options (strict ~/.ssh/known_hosts) to each host given.

Usage: python3 asyncssh_reach.py HOST [HOST ...]; exits non-zero naming each host that failed.
"""

import asyncio
import sys
import warnings

warnings.simplefilter("ignore")
import asyncssh  # noqa: E402  (after silencing cryptography's deprecation noise)


async def reach(host):
    try:
        async with asyncssh.connect(host) as conn:
            result = await conn.run("hostname", check=True)
            return host, result.stdout.strip(), None
    except (OSError, asyncssh.Error) as exc:
        return host, None, f"{type(exc).__name__}: {exc}"


async def main(hosts):
    results = await asyncio.gather(*(reach(h) for h in hosts))
    failed = [(h, err) for h, dummy, err in results if err]
    for host, name, err in results:
        print(f"{host} -> {name or err}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
