"""The ``users`` and ``audit`` commands of ``python -m geo``, and the audit of CLI imports and
exports.

    python -m geo users add NAME --role town --area 330212108   # asks for the password twice
    python -m geo users add NAME --role city --password-stdin < file
    python -m geo users list
    python -m geo users passwd NAME
    python -m geo users remove NAME
    python -m geo users ensure-demo-admin    # `make run`: a first admin, one-time password printed once
    python -m geo users wall-token NAME --area 330200 [--days 30] [--base-url http://host:5000]
    python -m geo users wall-token --list | --revoke NAME    # wall devices (geo/access/wall_devices.py)
    python -m geo audit [--limit 50] [--user NAME] [--action export]

Passwords are never taken as command-line arguments (they would sit in the shell history and
the process list): they are typed at a prompt, read from standard input, or generated.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from geo.access import audit
from geo.access.scope import ROLES
from geo.errors import BadParameter, DataNotReady
from geo.settings import Settings
from geo.store import open_store

# CLI commands written to the audit log: command -> audit action.
AUDITED_COMMANDS = {"ingest": "import", "grids": "boundary_update", "export": "export"}


def _read_password(args, name: str) -> tuple[str, bool]:
    """(password, generated): from stdin, from a prompt (typed twice), or generated when
    neither is possible."""
    from geo.access.users import generate_password

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if first != getpass.getpass("again: "):
            raise BadParameter("the two passwords differ")
        return first, False
    return generate_password(), True


def _atlas(settings: Settings):
    try:
        return open_store(settings).load_atlas(settings.demo_dir)
    except DataNotReady:
        return None  # no areas yet: the code's form is still checked


def _cmd_add(args, settings: Settings) -> int:
    from geo.access.users import add_user

    password, generated = _read_password(args, args.name)
    user = add_user(open_store(settings), args.name, args.role, args.area, password,
                    must_change=generated or args.must_change, atlas=_atlas(settings))
    audit.record(open_store(settings), audit.cli_user(), "user_added", user.name, "ok",
                 {"role": user.role, "area": user.area})
    print(f"added {user.name}: {user.role} {user.area}")
    if generated:
        print(f"one-time password (shown once; to be changed at the first sign-in): {password}")
    return 0


def _cmd_list(args, settings: Settings) -> int:
    from geo.access.users import list_users

    rows = list_users(open_store(settings))
    if not rows:
        print("no users: add one with `python -m geo users add NAME --role ROLE [--area CODE]`")
        return 0
    width = max(len(u.name) for u in rows)
    for u in rows:
        flag = "  (must change password)" if u.must_change else ""
        print(f"{u.name:<{width}}  {u.role:<8}  {u.area:<9}  last sign-in {u.last_login_at or 'never'}{flag}")
    return 0


def _cmd_remove(args, settings: Settings) -> int:
    from geo.access.users import remove_user

    remove_user(open_store(settings), args.name)
    audit.record(open_store(settings), audit.cli_user(), "user_removed", args.name)
    print(f"removed {args.name}")
    return 0


def _cmd_passwd(args, settings: Settings) -> int:
    from geo.access.users import get_user, set_password

    store = open_store(settings)
    if get_user(store, args.name) is None:
        raise BadParameter(f"no user named {args.name!r}")
    password, generated = _read_password(args, args.name)
    set_password(store, args.name, password, must_change=generated or args.must_change)
    audit.record(store, audit.cli_user(), "password_reset", args.name)
    print(f"password of {args.name} changed; their open sessions have ended")
    if generated:
        print(f"one-time password (shown once; to be changed at the first sign-in): {password}")
    return 0


def _cmd_ensure_demo_admin(args, settings: Settings) -> int:
    from geo.access.users import ensure_demo_admin

    store = open_store(settings)
    user, password = ensure_demo_admin(store, args.name)
    if user is None:
        print("an admin account exists; no password shown (reset one with `python -m geo users passwd NAME`)")
        return 0
    audit.record(store, audit.cli_user(), "user_added", user.name, "ok", {"role": "admin", "demo": True})
    print(f"created the admin account {user.name!r} with the one-time password: {password}")
    print("It is shown only now; the first sign-in asks for a new password.")
    return 0


def _cmd_wall_token(args, settings: Settings) -> int:
    from geo.access import wall_devices

    store = open_store(settings)
    if args.list:
        devices = wall_devices.list_devices(store)
        if not devices:
            print("no wall devices: issue one with `python -m geo users wall-token NAME --area CODE`")
        for d in devices:
            used = f"claimed {d.claimed_at} from {d.claimed_from or '-'}" if d.claimed_at else "not yet used"
            print(f"{d.name}  {d.area}  {d.state():<7}  expires {d.expires_at}  {used}  "
                  f"last seen {d.last_seen_at or 'never'}" + (f"  revoked {d.revoked_at}" if d.revoked_at else ""))
        return 0
    if args.revoke:
        device = wall_devices.revoke(store, args.revoke)
        audit.record(store, audit.cli_user(), "wall_device_revoked", device.name, "ok", {"area": device.area})
        print(f"revoked wall device {device.name}: its wall stops at its next refresh")
        return 0
    if not args.name:
        raise BadParameter("name the device (e.g. `users wall-token hall-left --area 330200`), or use --list "
                           "or --revoke NAME")
    days = settings.wall_device_days if args.days is None else args.days
    device, token = wall_devices.issue(store, args.name, args.area, days, atlas=_atlas(settings))
    audit.record(store, audit.cli_user(), "wall_device_issued", device.name, "ok",
                 {"area": device.area, "expires_at": device.expires_at})
    base = (args.base_url or "").rstrip("/")
    print(f"wall device {device.name}: area {device.area}, link valid until {device.expires_at}")
    print("Open this URL once on the wall PC (it is shown only now; add wall options before the #,")
    print("e.g. /wall/device?tour=1#token=...):")
    print(f"  {base}/wall/device#token={token}")
    return 0


def _cmd_audit(args, settings: Settings) -> int:
    for entry in audit.entries(open_store(settings), limit=args.limit, user=args.user, action=args.action):
        print(entry.line())
    return 0


def register(sub) -> None:
    """Add the ``users`` and ``audit`` commands to the CLI's subparsers."""
    p = sub.add_parser("users", help="accounts: add, list, passwd, remove, ensure-demo-admin, wall-token")
    users_sub = p.add_subparsers(dest="users_command", required=True)

    def password_options(q):
        q.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
        q.add_argument("--must-change", action="store_true", help="ask for a new password at the first sign-in")

    q = users_sub.add_parser("add", help="add a user with a role and, for district/town, an area code")
    q.add_argument("name")
    q.add_argument("--role", required=True, choices=ROLES)
    q.add_argument("--area", help="district (6 digits) or town (9 digits) code; the city for admin/city")
    password_options(q)
    q.set_defaults(func=_cmd_add)

    q = users_sub.add_parser("list", help="list the users, their roles and areas")
    q.set_defaults(func=_cmd_list)

    q = users_sub.add_parser("remove", help="remove a user (not the last admin)")
    q.add_argument("name")
    q.set_defaults(func=_cmd_remove)

    q = users_sub.add_parser("passwd", help="set a user's password (their sessions end)")
    q.add_argument("name")
    password_options(q)
    q.set_defaults(func=_cmd_passwd)

    q = users_sub.add_parser("ensure-demo-admin",
                             help="create an admin with a one-time password if there is no admin (prints it once)")
    q.add_argument("--name", default="admin")
    q.set_defaults(func=_cmd_ensure_demo_admin)

    q = users_sub.add_parser("wall-token", help="a long-lived, revocable login for one wall screen (prints its URL once)")
    q.add_argument("name", nargs="?", help="the device, e.g. hall-left (a new token replaces the old one)")
    q.add_argument("--area", help="what the wall shows: the city 330200 (default) or a district code")
    q.add_argument("--days", type=int, help="days until the link and the device's session expire (default: "
                                            "GRIDATLAS_WALL_DEVICE_DAYS, 30)")
    q.add_argument("--base-url", help="the server's address, printed before /wall/device (e.g. http://10.0.0.5:5000)")
    q.add_argument("--revoke", metavar="NAME", help="revoke a device: its wall stops at its next refresh")
    q.add_argument("--list", action="store_true", help="list the wall devices and their state")
    q.set_defaults(func=_cmd_wall_token)

    p = sub.add_parser("audit", help="print the audit log, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--user")
    p.add_argument("--action", choices=audit.ACTIONS)
    p.set_defaults(func=_cmd_audit)


def audit_command(args: argparse.Namespace, settings: Settings, outcome: str) -> None:
    """Write a CLI import, boundary update or export to the audit log (a dry run is not one)."""
    action = AUDITED_COMMANDS.get(args.command)
    if action is None or getattr(args, "dry_run", False):
        return
    target = getattr(args, "file", None) or getattr(args, "area", None) or getattr(args, "within", None) or ""
    detail = {k: v for k, v in vars(args).items() if k not in ("func", "command") and v not in (None, False)}
    try:
        audit.record(open_store(settings), audit.cli_user(), action, str(target), outcome, detail)
    except Exception as err:  # noqa: BLE001 - the work is done; say so rather than hide it
        print(f"warning: could not write the audit log: {err}", file=sys.stderr)
