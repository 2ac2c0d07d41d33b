"""Users, roles, sessions and API tokens, kept in the gateway's database (issue 6).

Who may call the API:

- **users** with a role: ``admin`` (users, and everything), ``manager`` (everything but user
  administration), ``maintenance`` (tickets, assets, inspections) and ``guard`` (taps, problem
  reports, his rounds). They log in with a name and a password and get a session: a cookie for
  the pages and the same secret as a bearer token for the API. Named API tokens can be made for
  a user too; they act with the user's role as it is at each request.
- **devices** (readers and concentrators posting over HTTP) hold a token with the role
  ``device``: it may only post taps, and its taps are read as from a reader of the device's name.
- the **installer**: the bootstrap token in ``<data_dir>/api-token`` (or ``api.token``) acts as
  an admin that is no user. ``gateway token --revoke`` (or ``DELETE /api/v1/auth/tokens/{id}``)
  revokes it; a revoked one is not generated again.

Passwords are hashed with scrypt (n=2**14, r=8, p=1, a 16-byte salt) into a self-describing
string ``scrypt$n$r$p$salt$key``, so the parameters can be raised later and old hashes still
verify (and are rehashed at the next login). Tokens and sessions are 32 random bytes, stored
only as their SHA-256: the database holds nothing that logs anyone in. Five wrong passwords in a
row lock a user for 15 minutes, each further lockout twice as long (at most a day). Sessions end
after 8 hours without use and 7 days at the most. Nothing here logs a password or a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import schema
from gateway.outbox import connect

_LOGGER = logging.getLogger(__name__)

ROLES = ("admin", "manager", "maintenance", "guard")
DEVICE = "device"
INSTALLER = "installer"

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
MAX_FAILURES = 5  # wrong passwords in a row before a lockout
LOCKOUT_S = 15 * 60.0  # the first lockout; each next one doubles
LOCKOUT_MAX_S = 86400.0
SESSION_IDLE_S = 8 * 3600.0
SESSION_MAX_S = 7 * 86400.0
TOUCH_S = 60.0  # a token's last use is written at most this often
PASSWORD_MIN, PASSWORD_MAX = 8, 256
NAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,64}$")  # a login name: 王师傅, G017, li.ming
DEVICE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # a reader id, as in its topics
ONE_TIME_FILE = "admin-password"
INSTALLER_FILE = "api-token"
FIRST_START = "first start"

_USER_COLUMNS = ("id, name, role, disabled, must_change, failures, lockouts, locked_until, created_at, created_by, "
                 "last_login, password_changed_at")
_TOKEN_COLUMNS = ("t.id, t.kind, t.name, t.user_id, u.name, t.device, t.created_at, t.created_by, t.last_used, "
                  "t.expires_at, t.revoked_at, t.revoked_by")


class AuthError(Exception):
    """A refused request: the HTTP status, a message for a person, the field it is about."""

    def __init__(self, status: int, message: str, field: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.retry_after = status, message, field, retry_after


# -- passwords -------------------------------------------------------------------------------------


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def hash_password(password: str) -> str:
    """``scrypt$16384$8$1$<salt>$<key>`` (base64 without padding)."""
    salt = os.urandom(SALT_BYTES)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (a malformed ``stored`` matches nothing)."""
    try:
        scheme, n_s, r_s, p_s, salt_s, key_s = stored.split("$")
        n, r, p, salt, key = int(n_s), int(r_s), int(p_s), _unb64(salt_s), _unb64(key_s)
        if scheme != "scrypt" or not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16 and key):
            return False
        got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(key),
                             maxmem=128 * r * (n + p + 2) + (1 << 20))
    except ValueError:  # not our format, bad base64, or parameters scrypt refuses
        return False
    return hmac.compare_digest(got, key)


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash to check unknown names against, so that they take as long as known ones."""
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def password_problem(password: str, name: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return f"must be at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"must be at most {PASSWORD_MAX} characters"
    if password.strip().casefold() == name.strip().casefold():
        return "must not be the user name"
    return None


def new_secret() -> str:
    """32 random bytes, URL-safe: a session or a token."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


def write_secret_file(path: Path, secret: str) -> None:
    """``secret`` into ``path``, readable by the gateway's user only (0600), whatever was there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)


# -- who is calling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who a request is from: a user (by session or token), a device, or the installer."""

    kind: str  # user | device | installer
    name: str
    role: str  # admin | manager | maintenance | guard | device
    user_id: int | None = None
    token_id: int | None = None
    via: str = "token"  # session | token
    must_change: bool = False

    @property
    def is_user(self) -> bool:
        return self.kind == "user"


def _user_json(row: tuple[Any, ...], now: float) -> dict[str, Any]:
    (ident, name, role, disabled, must_change, failures, lockouts, locked_until, created_at, created_by,
     last_login, changed_at) = row
    locked = locked_until is not None and now < locked_until
    return {"id": ident, "name": name, "role": role, "disabled": bool(disabled), "must_change": bool(must_change),
            "failures": failures, "lockouts": lockouts, "locked_until": locked_until if locked else None,
            "created_at": created_at, "created_by": created_by, "last_login": last_login,
            "password_changed_at": changed_at}


def _token_json(row: tuple[Any, ...]) -> dict[str, Any]:
    ident, kind, name, user_id, user, device, created_at, created_by, last_used, expires_at, revoked_at, by = row
    return {"id": ident, "kind": kind, "name": name, "user_id": user_id, "user": user, "device": device,
            "role": DEVICE if device else ("admin" if kind == INSTALLER else None), "created_at": created_at,
            "created_by": created_by, "last_used": last_used, "expires_at": expires_at, "revoked_at": revoked_at,
            "revoked_by": by}


class AuthStore:
    """Users, sessions and tokens. Its own connection to the gateway's database; any thread."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time, one_time_file: Path | None = None) -> None:
        self.db = connect(path)
        schema.migrate(self.db, schema.GATEWAY)  # its tables: gateway/schema.py
        self.clock = clock
        #: The first start's one-time admin password: removed once that admin has changed it.
        self.one_time_file = one_time_file
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # -- users -------------------------------------------------------------------------------------

    def has_users(self) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def _user_row(self, where: str, arg: object) -> tuple[Any, ...] | None:
        with self._lock:
            return self.db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE {where}", (arg,)).fetchone()

    def get_user(self, user_id: int) -> dict[str, Any]:
        row = self._user_row("id = ?", user_id)
        if row is None:
            raise AuthError(404, f"no user {user_id}")
        return _user_json(row, self.clock())

    def find_user(self, name: str) -> dict[str, Any] | None:
        row = self._user_row("name = ?", name)
        return None if row is None else _user_json(row, self.clock())

    def list_users(self, role: str | None = None, disabled: bool | None = None, limit: int = 100,
                   offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        where, args = ["1"], []
        if role is not None:
            where.append("role = ?")
            args.append(role)
        if disabled is not None:
            where.append("disabled = ?")
            args.append(int(disabled))
        cond = " AND ".join(where)
        with self._lock:
            total = self.db.execute(f"SELECT COUNT(*) FROM users WHERE {cond}", args).fetchone()[0]
            rows = self.db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE {cond} ORDER BY id LIMIT ? OFFSET ?",
                                   [*args, limit, offset]).fetchall()
        now = self.clock()
        return [_user_json(r, now) for r in rows], total

    def create_user(self, name: str, role: str, password: str, by: str, must_change: bool = True) -> dict[str, Any]:
        name = name.strip()
        if not NAME.fullmatch(name):
            raise AuthError(422, "name: 1-64 characters, no control characters or slashes", "name")
        if role not in ROLES:
            raise AuthError(422, f"role: one of {', '.join(ROLES)}", "role")
        problem = password_problem(password, name)
        if problem:
            raise AuthError(422, f"password: {problem}", "password")
        hashed = hash_password(password)
        now = self.clock()
        try:
            with self._lock:
                cur = self.db.execute(
                    "INSERT INTO users (name, role, password, must_change, created_at, created_by, password_changed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", (name, role, hashed, int(must_change), now, by, now))
        except sqlite3.IntegrityError:
            raise AuthError(409, f"a user named {name!r} already exists", "name") from None
        _LOGGER.info("user %s (%s) created by %s", name, role, by)
        return self.get_user(int(cur.lastrowid or 0))

    def _enabled_admins_without(self, user_id: int) -> int:
        with self._lock:
            return self.db.execute("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?",
                                   (user_id,)).fetchone()[0]

    def update_user(self, user_id: int, by: str, role: str | None = None, disabled: bool | None = None,
                    password: str | None = None, unlock: bool = False) -> dict[str, Any]:
        """An admin's change. A password set this way is temporary: the user must change it, and the
        user's sessions end."""
        user = self.get_user(user_id)
        if role is not None and role not in ROLES:
            raise AuthError(422, f"role: one of {', '.join(ROLES)}", "role")
        stays_admin = (role or user["role"]) == "admin" and not (user["disabled"] if disabled is None else disabled)
        if user["role"] == "admin" and not user["disabled"] and not stays_admin \
                and self._enabled_admins_without(user_id) == 0:
            raise AuthError(409, "this is the last enabled admin: make another admin first", "role")
        sets: list[str] = []
        args: list[object] = []
        if role is not None:
            sets.append("role = ?")
            args.append(role)
        if disabled is not None:
            sets.append("disabled = ?")
            args.append(int(disabled))
        if password is not None:
            problem = password_problem(password, user["name"])
            if problem:
                raise AuthError(422, f"password: {problem}", "password")
            sets += ["password = ?", "must_change = 1", "password_changed_at = ?"]
            args += [hash_password(password), self.clock()]
        if unlock or password is not None:
            sets += ["failures = 0", "lockouts = 0", "locked_until = NULL"]
        if sets:
            with self._lock:
                self.db.execute(f"UPDATE users SET {', '.join(sets)} WHERE id = ?", [*args, user_id])
                if password is not None or disabled:
                    self.db.execute("DELETE FROM auth_tokens WHERE user_id = ? AND kind = 'session'", (user_id,))
            _LOGGER.info("user %s changed by %s: %s", user["name"], by,
                         ", ".join(s.split(" = ")[0] for s in sets if not s.startswith(("failures", "lockouts"))))
        return self.get_user(user_id)

    def delete_user(self, user_id: int, by: str) -> None:
        user = self.get_user(user_id)
        if user["role"] == "admin" and not user["disabled"] and self._enabled_admins_without(user_id) == 0:
            raise AuthError(409, "this is the last enabled admin: make another admin first")
        with self._lock:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM auth_tokens WHERE user_id = ?", (user_id,))
            self.db.execute("DELETE FROM users WHERE id = ?", (user_id,))
            self.db.execute("COMMIT")
        _LOGGER.info("user %s deleted by %s, with its sessions and tokens", user["name"], by)

    def change_password(self, user_id: int, current: str, new: str, keep_token: int | None = None) -> None:
        """The user's own change: the current password first. Ends the user's other sessions."""
        with self._lock:
            row = self.db.execute("SELECT name, password, created_by FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            raise AuthError(404, f"no user {user_id}")
        name, stored, created_by = row
        if not verify_password(current, stored):
            raise AuthError(403, "the current password is wrong", "current")
        if hmac.compare_digest(current.encode(), new.encode()):
            raise AuthError(422, "new: must differ from the current password", "new")
        problem = password_problem(new, name)
        if problem:
            raise AuthError(422, f"new: {problem}", "new")
        with self._lock:
            self.db.execute("UPDATE users SET password = ?, must_change = 0, password_changed_at = ? WHERE id = ?",
                            (hash_password(new), self.clock(), user_id))
            self.db.execute("DELETE FROM auth_tokens WHERE user_id = ? AND kind = 'session' AND id IS NOT ?",
                            (user_id, keep_token))
        if created_by == FIRST_START and self.one_time_file is not None and self.one_time_file.exists():
            self.one_time_file.unlink()
            _LOGGER.info("user %s changed the one-time password: %s removed", name, self.one_time_file)
        else:
            _LOGGER.info("user %s changed their password", name)

    # -- logging in --------------------------------------------------------------------------------

    def login(self, name: str, password: str) -> tuple[Principal, str, float]:
        """A new session for the user: (who, the secret, when it ends at the latest)."""
        with self._lock:
            row = self.db.execute("SELECT id, name, role, password, disabled, must_change, locked_until "
                                  "FROM users WHERE name = ?", (name.strip(),)).fetchone()
        if row is None:
            verify_password(password, _dummy_hash())  # as slow as a known name
            _LOGGER.warning("failed login: unknown user name")
            raise AuthError(401, "wrong user name or password", "password")
        user_id, name, role, stored, disabled, must_change, locked_until = row
        now = self.clock()
        if locked_until is not None and now < locked_until:
            raise self._locked(locked_until, now)
        if not verify_password(password, stored):
            self._failed(user_id, name)
            raise AuthError(401, "wrong user name or password", "password")
        if disabled:
            _LOGGER.warning("refused login of disabled user %s", name)
            raise AuthError(403, "this account is disabled: ask an admin")
        now = self.clock()
        sets, args = "failures = 0, lockouts = 0, locked_until = NULL, last_login = ?", [now]
        if needs_rehash(stored):
            sets += ", password = ?"
            args.append(hash_password(password))
        secret = new_secret()
        expires = now + SESSION_MAX_S
        with self._lock:
            self.db.execute("BEGIN")
            self.db.execute(f"UPDATE users SET {sets} WHERE id = ?", [*args, user_id])
            self.db.execute("DELETE FROM auth_tokens WHERE kind = 'session' AND (expires_at <= ? OR last_used <= ?)",
                            (now, now - SESSION_IDLE_S))
            cur = self.db.execute("INSERT INTO auth_tokens (hash, kind, name, user_id, created_at, created_by, "
                                  "last_used, expires_at) VALUES (?, 'session', 'login', ?, ?, ?, ?, ?)",
                                  (secret_hash(secret), user_id, now, name, now, expires))
            self.db.execute("COMMIT")
        _LOGGER.info("user %s logged in", name)
        who = Principal("user", name, role, user_id, cur.lastrowid, "session", bool(must_change))
        return who, secret, expires

    def _locked(self, until: float, now: float) -> AuthError:
        minutes = max(1, round((until - now) / 60))
        return AuthError(429, f"too many wrong passwords: this user is locked for {minutes} more minute(s)",
                         retry_after=until - now)

    def _failed(self, user_id: int, name: str) -> None:
        """Count a wrong password; the fifth in a row locks the user (15 min, doubling each time)."""
        now = self.clock()
        with self._lock:
            self.db.execute("BEGIN")
            failures, lockouts, locked_until = self.db.execute(
                "SELECT failures, lockouts, locked_until FROM users WHERE id = ?", (user_id,)).fetchone()
            if locked_until is not None and now < locked_until:  # locked meanwhile by a concurrent attempt
                self.db.execute("COMMIT")
                return
            failures += 1
            until = None
            if failures >= MAX_FAILURES:
                until = now + min(LOCKOUT_S * 2 ** lockouts, LOCKOUT_MAX_S)
                failures, lockouts = 0, lockouts + 1
            self.db.execute("UPDATE users SET failures = ?, lockouts = ?, locked_until = ? WHERE id = ?",
                            (failures, lockouts, until if until is not None else locked_until, user_id))
            self.db.execute("COMMIT")
        if until is None:
            _LOGGER.warning("failed login for user %s (%d in a row)", name, failures)
        else:
            _LOGGER.warning("user %s locked for %.0f minutes after %d wrong passwords in a row", name,
                            (until - now) / 60, MAX_FAILURES)

    def end_session(self, token_id: int) -> None:
        with self._lock:
            self.db.execute("DELETE FROM auth_tokens WHERE id = ? AND kind = 'session'", (token_id,))

    def authenticate(self, secret: str) -> Principal | None:
        """Who holds ``secret`` (a session, an API token, the installer's), or None: unknown, revoked,
        expired, idle too long, or its user disabled or deleted."""
        digest = secret_hash(secret)
        with self._lock:
            row = self.db.execute(
                "SELECT t.id, t.hash, t.kind, t.user_id, t.device, t.created_at, t.last_used, t.expires_at, "
                "t.revoked_at, u.id, u.name, u.role, u.disabled, u.must_change "
                "FROM auth_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = ?", (digest,)).fetchone()
        if row is None:
            return None
        (token_id, stored, kind, user_id, device, created_at, last_used, expires_at, revoked_at, uid, name, role,
         disabled, must_change) = row
        now = self.clock()
        if not hmac.compare_digest(stored, digest) or revoked_at is not None:
            return None
        if expires_at is not None and now >= expires_at:
            return None
        if kind == "session" and now - (last_used or created_at) >= SESSION_IDLE_S:
            return None
        if user_id is not None and (uid is None or disabled):
            return None
        if last_used is None or now - last_used >= TOUCH_S:
            with self._lock:
                self.db.execute("UPDATE auth_tokens SET last_used = ? WHERE id = ?", (now, token_id))
        if kind == INSTALLER:
            return Principal(INSTALLER, INSTALLER, "admin", None, token_id, "token")
        if device is not None:
            return Principal("device", device, DEVICE, None, token_id, "token")
        return Principal("user", name, role, uid, token_id, "session" if kind == "session" else "token",
                         bool(must_change))

    # -- API tokens --------------------------------------------------------------------------------

    def create_token(self, name: str, by: str, user_id: int | None = None, device: str | None = None,
                     expires_at: float | None = None) -> tuple[dict[str, Any], str]:
        """A named token for a user or a device: (its description, the secret, shown only now)."""
        if (user_id is None) == (device is None):
            raise AuthError(422, "name a user or a device (one of them)", "device")
        if device is not None and not DEVICE_NAME.fullmatch(device):
            raise AuthError(422, "device: 1-64 of A-Z a-z 0-9 _ . - (the reader's id)", "device")
        if user_id is not None:
            self.get_user(user_id)
        secret = new_secret()
        with self._lock:
            cur = self.db.execute("INSERT INTO auth_tokens (hash, kind, name, user_id, device, created_at, created_by,"
                                  " expires_at) VALUES (?, 'api', ?, ?, ?, ?, ?, ?)",
                                  (secret_hash(secret), name, user_id, device, self.clock(), by, expires_at))
        token = self.get_token(int(cur.lastrowid or 0))
        _LOGGER.info("API token %d (%s) for %s created by %s", token["id"], name,
                     f"device {device}" if device else f"user {token['user']}", by)
        return token, secret

    def get_token(self, token_id: int) -> dict[str, Any]:
        with self._lock:
            row = self.db.execute(f"SELECT {_TOKEN_COLUMNS} FROM auth_tokens t LEFT JOIN users u ON u.id = t.user_id "
                                  "WHERE t.id = ? AND t.kind != 'session'", (token_id,)).fetchone()
        if row is None:
            raise AuthError(404, f"no token {token_id}")
        return _token_json(row)

    def list_tokens(self, user_id: int | None = None, devices: bool = False, everything: bool = False,
                    revoked: bool = False) -> list[dict[str, Any]]:
        """API tokens (not sessions): a user's own; with ``devices`` the devices' too; ``everything``
        includes the installer's and every user's."""
        where = "t.kind != 'session'"
        args: list[object] = []
        if not everything:
            where += " AND (t.user_id IS ?" + (" OR t.device IS NOT NULL)" if devices else ")")
            args.append(user_id if user_id is not None else -1)
        if not revoked:
            where += " AND t.revoked_at IS NULL"
        with self._lock:
            rows = self.db.execute(f"SELECT {_TOKEN_COLUMNS} FROM auth_tokens t LEFT JOIN users u ON u.id = t.user_id "
                                   f"WHERE {where} ORDER BY t.id", args).fetchall()
        return [_token_json(r) for r in rows]

    def revoke_token(self, token_id: int, by: str) -> dict[str, Any]:
        token = self.get_token(token_id)
        if token["revoked_at"] is None:
            with self._lock:
                self.db.execute("UPDATE auth_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                                (self.clock(), by, token_id))
            _LOGGER.info("token %d (%s) revoked by %s", token_id, token["name"], by)
        return self.get_token(token_id)

    # -- the installer's token ---------------------------------------------------------------------

    def installer_known(self) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM auth_tokens WHERE kind = ? LIMIT 1", (INSTALLER,)).fetchone() \
                is not None

    def set_installer(self, secret: str, source: str) -> bool:
        """Register ``secret`` as the installer's token (revoking a previous one); False if it was revoked."""
        digest = secret_hash(secret)
        now = self.clock()
        with self._lock:
            row = self.db.execute("SELECT kind, revoked_at FROM auth_tokens WHERE hash = ?", (digest,)).fetchone()
            if row is not None:
                return row[0] == INSTALLER and row[1] is None
            self.db.execute("BEGIN")
            self.db.execute("UPDATE auth_tokens SET revoked_at = ?, revoked_by = 'replaced' "
                            "WHERE kind = ? AND revoked_at IS NULL", (now, INSTALLER))
            self.db.execute("INSERT INTO auth_tokens (hash, kind, name, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                            (digest, INSTALLER, f"installer ({source})", now, FIRST_START))
            self.db.execute("COMMIT")
        return True

    def revoke_installer(self, by: str) -> int:
        with self._lock:
            return self.db.execute("UPDATE auth_tokens SET revoked_at = ?, revoked_by = ? "
                                   "WHERE kind = ? AND revoked_at IS NULL", (self.clock(), by, INSTALLER)).rowcount


# -- first start -----------------------------------------------------------------------------------


def first_admin(store: AuthStore, name: str, password_file: Path | None, data_dir: Path) -> None:
    """With no user yet: the admin from the configuration (a password file), or one with a one-time
    password written to ``<data_dir>/admin-password`` (0600), to be changed at first login.
    Raises ValueError (the setting and what is wrong) when the configured file cannot be used."""
    if store.has_users():
        return
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").strip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"api.admin_password_file: cannot read {password_file}: {exc}") from None
        problem = password_problem(password, name)
        if problem:
            raise ValueError(f"api.admin_password_file: the password in {password_file} {problem}")
        store.create_user(name, "admin", password, by="configuration", must_change=False)
        if password_file.stat().st_mode & 0o077:
            _LOGGER.warning("%s can be read by other users: restrict it (chmod 600) or delete it now", password_file)
        _LOGGER.info("created the admin user %s from api.admin_password_file (%s)", name, password_file)
        return
    path = data_dir / ONE_TIME_FILE
    password = one_time_password()
    write_secret_file(path, password)
    store.create_user(name, "admin", password, by=FIRST_START, must_change=True)
    _LOGGER.warning("no admin configured (api.admin_password_file): created the admin user %s with a one-time "
                    "password in %s (mode 0600); it must be changed at the first login", name, path)


def installer_token(configured: str, data_dir: Path, store: AuthStore) -> str:
    """The installer's bootstrap token: ``api.token`` if set, else ``<data_dir>/api-token``, generated
    on the first start only. Returns "" when it was revoked (``gateway token --new`` makes a new one)."""
    if configured:
        if store.set_installer(configured, "api.token"):
            return configured
        _LOGGER.warning("api.token was revoked: it is refused (remove it from the configuration)")
        return ""
    path = data_dir / INSTALLER_FILE
    if path.exists():
        token = path.read_text().strip()
        if store.set_installer(token, INSTALLER_FILE):
            return token
        _LOGGER.warning("the installer token in %s was revoked: it is refused (delete the file)", path)
        return ""
    if store.installer_known():
        _LOGGER.info("no installer token (revoked; `gateway token --new` makes a new one)")
        return ""
    return new_installer_token(data_dir, store)


def new_installer_token(data_dir: Path, store: AuthStore) -> str:
    path = data_dir / INSTALLER_FILE
    token = new_secret()
    write_secret_file(path, token)
    store.set_installer(token, INSTALLER_FILE)
    _LOGGER.info("generated the installer's API token (admin) into %s (read it from there; it is never logged)",
                 path)
    return token
