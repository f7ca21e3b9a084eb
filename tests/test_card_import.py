"""`tillgate cards import FILE.csv`: the file checked whole (every problem by line, nothing
stored), a one-time code by e-mail through a real SMTP server, then the batch applied once, and
resumed (not repeated) when run again."""

from __future__ import annotations

import email
import json
import re
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from test_ledger_cli import ROOT, tillgate, write_config

from gateway.config.model import load_config
from gateway.embedded_redis import free_port
from gateway.issuance.importfile import ImportFileError, read_batch
from gateway.ledger.cards import card_id, state_key
from protocols.carddata import generate_card_number


class MailBox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def code(self) -> str:
        body = self.messages[-1].get_payload(decode=True).decode()
        return re.search(r"Confirmation code: (\d{8})", body).group(1)


@pytest.fixture
def mailbox():
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def config_file(tmp_path, redis_url, mailbox):
    _box, port = mailbox
    return write_config(tmp_path, redis_url, f"""
[email]
host = "127.0.0.1"
port = {port}
from = "tillgate@example.com"

[imports]
confirm_to = ["ops@example.com"]
""")


CONFIG = load_config(ROOT / "config" / "tillgate.toml")


def numbers(program: str, count: int) -> list[str]:
    p = CONFIG.programs[program]
    return [generate_card_number(p.prefix, p.card_length_max, p.luhn) for _ in range(count)]


def balance(redis_url: str, card: str) -> int | None:
    raw = redis.Redis.from_url(redis_url).hget(state_key(card_id(card)), "bal")
    return None if raw is None else int(raw)


# -- the file ----------------------------------------------------------------------------------

def test_every_problem_is_named_by_line_and_card_numbers_are_masked():
    gift, secure = numbers("gift", 3), numbers("secure", 2)
    bad_luhn = gift[2][:-1] + str((int(gift[2][-1]) + 1) % 10)
    text = ("card,program,pin,amount\n"
            f"{gift[0]},gift,,25.00\n"          # line 2: fine
            f"{gift[0]},gift,,\n"               # line 3: repeats line 2
            f"{bad_luhn},gift,,\n"              # line 4: check digit
            f"{secure[0]},secure,,\n"           # line 5: PIN missing
            f"{gift[1]},gift,1234,\n"           # line 6: gift has no PINs
            f"{secure[1]},secure,1234,12.345\n"  # line 7: three decimals
            f"{gift[1]},gift,,2000.00\n"        # line 8: over the maximum balance
            f"{gift[1]},nosuch,,\n")            # line 9: unknown program
    with pytest.raises(ImportFileError) as caught:
        read_batch(text.encode(), CONFIG)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in range(3, 10)]
    assert "repeats line 2" in problems[0] and "does not fit program 'gift'" in problems[1]
    assert "pin must be 4 digits" in problems[2] and "has no PINs" in problems[3]
    assert "at most 2 decimals" in problems[4] and "maximum balance" in problems[5]
    assert "unknown program 'nosuch'" in problems[6]
    joined = "\n".join(problems)
    assert not any(n in joined for n in gift + secure + [bad_luhn])


def test_header_problems_and_a_good_file():
    with pytest.raises(ImportFileError, match="unknown column 'balance'"):
        read_batch(b"card,balance\n", CONFIG)
    with pytest.raises(ImportFileError, match="no program column"):
        read_batch(b"card\n1\n", CONFIG)
    gift, loyalty = numbers("gift", 1), numbers("loyalty", 1)
    data = f"\ufeffCard,Amount\n{gift[0]},10\n\n".encode()  # BOM, capitals, a blank line
    batch = read_batch(data, CONFIG, program_id="gift")
    assert [(r.line, r.card, r.amount) for r in batch.rows] == [(2, gift[0], 1000)]
    batch = read_batch(f"card,program,amount\n{loyalty[0]},loyalty,0\n".encode(), CONFIG)
    assert batch.rows[0].amount == 0 and batch.totals() == {"loyalty": (1, 0)}
    with pytest.raises(ImportFileError, match="without points"):
        read_batch(f"card,program,amount\n{loyalty[0]},loyalty,5\n".encode(), CONFIG)


# -- the command ---------------------------------------------------------------------------------

def test_import_confirmed_by_the_emailed_code(config_file, tmp_path, redis_url, mailbox):
    box, _port = mailbox
    gift, secure = numbers("gift", 2), numbers("secure", 1)
    path = tmp_path / "batch.csv"
    path.write_text("card,program,pin,amount\n"
                    f"{gift[0]},gift,,25.00\n{gift[1]},gift,,\n{secure[0]},secure,4321,5\n")

    first = tillgate(config_file, "cards", "import", str(path))
    assert first.returncode == 0, first.stderr
    assert "gift: 2 card(s), 25.00 to load; secure: 1 card(s), 5.00 to load" in first.stdout
    assert "--code CODE" in first.stdout and "ops@example.com" in first.stdout
    assert len(box.messages) == 1 and box.messages[0]["To"] == "ops@example.com"
    body = box.messages[0].get_payload(decode=True).decode()
    assert not any(n in body for n in gift + secure)  # the code, a summary, never a number
    assert all(balance(redis_url, n) is None for n in gift + secure)  # nothing yet

    code = box.code()
    wrong = "00000000" if code != "00000000" else "11111111"
    refused = tillgate(config_file, "cards", "import", str(path), "--code", wrong)
    assert refused.returncode == 2 and "2 tries left" in refused.stderr
    assert all(balance(redis_url, n) is None for n in gift + secure)

    done = tillgate(config_file, "cards", "import", str(path), "--code", code)
    assert done.returncode == 0, done.stderr
    assert "(3 created, 2 activated by this run)" in done.stdout
    assert [balance(redis_url, n) for n in gift + secure] == [2500, 0, 500]
    shown = json.loads(tillgate(config_file, "cards", "show", gift[1], "--json").stdout)
    assert shown["status"] == "issued" and shown["program"] == "gift"

    again = tillgate(config_file, "cards", "import", str(path))
    assert again.returncode == 0 and "already imported" in again.stdout
    assert len(box.messages) == 1  # no second code for a batch that is done
    audit = tillgate(config_file, "audit")
    assert audit.returncode == 0, audit.stdout


def test_an_interrupted_batch_is_finished_not_repeated(config_file, tmp_path, redis_url, mailbox):
    box, _port = mailbox
    gift = numbers("gift", 3)
    path = tmp_path / "batch.csv"
    path.write_text("card,amount\n" + "".join(f"{n},10.00\n" for n in gift))
    assert tillgate(config_file, "cards", "import", str(path), "--program", "gift").returncode == 0
    ok = tillgate(config_file, "cards", "import", str(path), "--program", "gift", "--code",
                  box.code())
    assert ok.returncode == 0, ok.stderr
    # as if the run had stopped after its last card: the batch is confirmed, not done
    batch = read_batch(path.read_bytes(), CONFIG, "gift")
    client = redis.Redis.from_url(redis_url)
    client.hset(f"imp:{{{batch.digest}}}", "state", "confirmed")
    resumed = tillgate(config_file, "cards", "import", str(path), "--program", "gift")
    assert resumed.returncode == 0, resumed.stderr
    assert "(0 created, 3 activated by this run)" in resumed.stdout  # replayed, not loaded again
    assert [balance(redis_url, n) for n in gift] == [1000, 1000, 1000]


def test_no_batch_over_an_existing_card_and_no_tries_without_end(config_file, tmp_path,
                                                                  redis_url, mailbox):
    box, _port = mailbox
    gift = numbers("gift", 2)
    redis.Redis.from_url(redis_url).hset(state_key(card_id(gift[1])),
                                         mapping={"status": "issued", "bal": 0})
    path = tmp_path / "batch.csv"
    path.write_text(f"card,program\n{gift[0]},gift\n{gift[1]},gift\n")
    refused = tillgate(config_file, "cards", "import", str(path))
    assert refused.returncode == 2 and "line 3: card already exists" in refused.stderr
    assert not box.messages and balance(redis_url, gift[0]) is None

    path.write_text(f"card,program\n{gift[0]},gift\n")
    assert tillgate(config_file, "cards", "import", str(path)).returncode == 0
    code = box.code()
    wrong = "00000000" if code != "00000000" else "11111111"
    for left in ("2 tries left", "1 try left", "no tries left"):
        out = tillgate(config_file, "cards", "import", str(path), "--code", wrong)
        assert out.returncode == 2 and left in out.stderr
    late = tillgate(config_file, "cards", "import", str(path), "--code", code)
    assert late.returncode == 2 and "no code is waiting" in late.stderr
    assert balance(redis_url, gift[0]) is None


def test_a_bad_file_stores_nothing_and_no_recipient_is_refused(config_file, tmp_path, mailbox):
    box, _port = mailbox
    path = tmp_path / "bad.csv"
    path.write_text("card,program\n123,gift\n")
    out = tillgate(config_file, "cards", "import", str(path))
    assert out.returncode == 2 and "line 2: card *** does not fit" in out.stderr
    assert "nothing imported" in out.stderr
    assert not box.messages
    bare = Path(config_file).read_text().replace('confirm_to = ["ops@example.com"]', "")
    Path(config_file).write_text(bare)
    out = tillgate(config_file, "cards", "import", str(path))
    assert out.returncode == 2 and "imports.confirm_to" in out.stderr


def test_a_changed_file_needs_its_own_code_and_a_relay_that_is_down_is_said(
        config_file, tmp_path, redis_url, mailbox):
    box, port = mailbox
    gift = numbers("gift", 2)
    path = tmp_path / "batch.csv"
    path.write_text(f"card,program\n{gift[0]},gift\n")
    assert tillgate(config_file, "cards", "import", str(path)).returncode == 0
    code = box.code()
    path.write_text(f"card,program\n{gift[0]},gift\n{gift[1]},gift\n")  # edited after the mail
    out = tillgate(config_file, "cards", "import", str(path), "--code", code)
    assert out.returncode == 2 and "no code is waiting for this file" in out.stderr
    assert balance(redis_url, gift[0]) is None and balance(redis_url, gift[1]) is None

    down = Path(config_file).read_text().replace(f"port = {port}", f"port = {free_port()}")
    Path(config_file).write_text(down)
    out = tillgate(config_file, "cards", "import", str(path))
    assert out.returncode == 1 and "confirmation code could not be sent" in out.stderr
    assert balance(redis_url, gift[1]) is None


def test_without_a_relay_the_code_lands_in_the_maildir(tmp_path, redis_url):
    """No [email] section (the embedded default): the code is written to <data_dir>/mail, the
    command says where, and the batch is confirmed with it."""
    config_file = write_config(tmp_path, redis_url,
                               '\n[imports]\nconfirm_to = ["ops@example.com"]\n')
    gift = numbers("gift", 1)
    path = tmp_path / "batch.csv"
    path.write_text(f"card,amount\n{gift[0]},10.00\n")
    first = tillgate(str(config_file), "cards", "import", str(path), "--program", "gift")
    maildir = tmp_path / "var" / "mail"
    assert first.returncode == 0 and f"{maildir}/new/" in first.stdout, first.stderr
    (mail,) = (maildir / "new").iterdir()
    message = email.message_from_bytes(mail.read_bytes())
    assert message["To"] == "ops@example.com" and gift[0] not in mail.read_text()
    code = re.search(r"Confirmation code: (\d{8})", message.get_payload()).group(1)
    done = tillgate(str(config_file), "cards", "import", str(path), "--program", "gift",
                    "--code", code)
    assert done.returncode == 0, done.stderr
    assert balance(redis_url, gift[0]) == 1000
