"""Card artwork: the batch's cards, the manufacturer and PIN mailer files, the proof sheet, and
`tillgate cards artwork` run as an operator would, after a real `cards issue` on a real Redis.

The proof sheet's symbols are decoded back from the SVG itself: its rectangles are drawn into a
PNG (Pillow) and read by zxing-cpp, a barcode reader that shares no code with the writers.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_ledger_cli import config_file, tillgate  # noqa: F401  (config_file: a fixture)

from gateway.config.model import Program
from gateway.issuance import printfile, proofsheet
from gateway.issuance.artwork import (
    BatchError,
    Layout,
    card_art,
    check_layout,
    default_name,
    read_batch,
)
from protocols import _carddata_py as decoders
from protocols._carddata_py import generate_card_number

zxingcpp = pytest.importorskip("zxingcpp")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
PX_PER_MM = 20  # a 0.25 mm bar module is 5 pixels

GIFT = Program(id="gift", kind="gift", currency="840", card_length_min=19, card_length_max=19,
               prefix="603953", luhn=True)
SECURE = Program(id="secure", kind="gift", currency="840", card_length_min=16,
                 card_length_max=16, prefix="603954", luhn=True, pin_length=4)
CLUB = Program(id="club_points", kind="loyalty", currency="840", card_length_min=10,
               card_length_max=19, prefix="L", luhn=False, alphanumeric=True)


def _batch(rows: list[list[str]], header: str = "card,pin,program") -> io.StringIO:
    return io.StringIO(header + "\n" + "".join(",".join(r) + "\n" for r in rows))


def test_alphanumeric_numbers_go_to_track_1_only() -> None:
    layout = Layout(tracks=(1, 2, 3), name=default_name(CLUB), expiry="3012")
    numbers = ["L8Q2ZK4M1P", generate_card_number("L", 19, False, alphanumeric=True),
               "L123456789"]
    cards = list(read_batch(_batch([[n, "", "club"] for n in numbers]), CLUB, layout))
    assert default_name(CLUB) == "CLUB POINTS CARD"
    for card, number in zip(cards, numbers):
        assert decoders.decode_track1(card.track1)["pan"] == number
        assert (card.track2, card.track3) == ("", "")  # 5-bit numeric tracks: no letters
    with pytest.raises(ValueError, match="alphanumeric numbers: they go to track 1"):
        check_layout(Layout(tracks=(2, 3)), CLUB)


def test_numeric_cards_get_every_track_asked_for() -> None:
    number = generate_card_number("603953", 19, True)
    card = card_art(7, number, "", Layout(tracks=(1, 2, 3), name="GIFT CARD", expiry="2912",
                                          service_code="120", with_lrc=True))
    assert decoders.decode_track2(card.track2)["expiry"] == "2912"
    assert decoders.decode_track3(card.track3)["pan"] == number
    assert decoders.decode_swipe(card.track1[:-1] + card.track2[:-1])["pan"] == number
    assert (card.sequence, card.code128, card.qr) == (7, number, f"tillgate:card/{number}")


@pytest.mark.parametrize("rows, header, program, message", [
    ([["603953123"]], "card", GIFT, "line 2: not a card number of program 'gift'"),
    ([[generate_card_number("603954", 16, True), "12"]], "card,pin", SECURE,
     "line 2: the PIN must be 4 digits"),
    ([[generate_card_number("603954", 16, True)]], "card", SECURE, "needs a 'pin' column"),
    ([["x"]], "number", GIFT, "needs a header with a 'card' column"),
])
def test_a_bad_batch_names_its_line(rows, header, program, message) -> None:
    with pytest.raises(BatchError, match=re.escape(message)) as refused:
        list(read_batch(_batch(rows, header), program, Layout()))
    assert rows[0][0] not in str(refused.value) or len(rows[0][0]) < 8


def test_a_card_twice_in_a_batch_is_refused() -> None:
    number = generate_card_number("603953", 19, True)
    with pytest.raises(BatchError, match="line 3: a card that is already in the batch"):
        list(read_batch(_batch([[number], [number]], "card"), GIFT, Layout()))


def test_private_files_are_0600_new_and_removed_on_failure(tmp_path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "cards.csv"
        with printfile.private_file(str(path)) as out:
            out.write("x")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with pytest.raises(FileExistsError):
            with printfile.private_file(str(path)):
                pass
        assert path.read_text() == "x"  # untouched
        broken = tmp_path / "half.csv"
        with pytest.raises(RuntimeError):
            with printfile.private_file(str(broken)) as out:
                out.write("half")
                raise RuntimeError("disk full")
        assert not broken.exists()
    finally:
        os.umask(old)


def test_files_columns_and_pin_placement() -> None:
    number = generate_card_number("603954", 16, True)
    card = card_art(1, number, "4821", Layout())
    lines = list(printfile.csv_lines(printfile.printer_rows([card], with_pins=False)))
    assert lines[0] == "sequence,card,pin,track1,track2,track3,code128,qr\r\n"
    assert next(csv.reader([lines[1]]))[:3] == ["1", number, ""]
    assert "4821" in list(printfile.csv_lines(printfile.printer_rows([card], True)))[1]
    mailer = list(printfile.csv_lines(printfile.mailer_rows([card])))
    assert mailer[0] == "sequence,card_masked,last4,pin\r\n"
    assert next(csv.reader([mailer[1]])) == ["1", number[:6] + "******" + number[-4:],
                                             number[-4:], "4821"]
    assert number not in mailer[1]


# --- the proof sheet, decoded back -----------------------------------------------------------


def _decode_group(group: ET.Element) -> list:
    """Draw one symbol's rectangles, black on white, into a card-sized PNG and decode it."""
    image = Image.new("L", (round(proofsheet.CARD_W * PX_PER_MM),
                            round(proofsheet.CARD_H * PX_PER_MM)), 255)
    draw = ImageDraw.Draw(image)
    for rect in group.iter(f"{SVG}rect"):
        x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
        w, h = float(rect.get("width", 0)), float(rect.get("height", 0))
        x0, y0 = round(x * PX_PER_MM), round(y * PX_PER_MM)
        x1, y1 = round((x + w) * PX_PER_MM), round((y + h) * PX_PER_MM)
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=0)
    png = io.BytesIO()
    image.save(png, "PNG")  # what is decoded is a PNG file, as a printer's proof scan would be
    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png.getvalue())))


def _decoded_cells(svg: str) -> list[tuple[int, str, str, str]]:
    """(sequence, printed number, Code 128 text, QR text) of every cell of a page."""
    root = ET.fromstring(svg)
    cells = []
    for cell in root.iter(f"{SVG}g"):
        if cell.get("class") != "card":
            continue
        found = {}
        for group in cell:
            kind = group.get("class")
            if kind in ("code128", "qr"):
                (result,) = _decode_group(group)
                found[kind] = (result.format.name, result.text)
        number = next(t.text for t in cell.iter(f"{SVG}text") if t.get("class") == "number")
        assert found["code128"][0] == "Code128" and found["qr"][0] == "QRCode"
        cells.append((int(cell.get("data-sequence", 0)), number or "", found["code128"][1],
                      found["qr"][1]))
    return cells


@pytest.mark.parametrize("program, prefix, length, alphanumeric", [
    (GIFT, "603953", 19, False),
    (CLUB, "L", 19, True),  # Code 128 set B: the widest symbol, narrowed to fit
    (CLUB, "L", 10, True),
])
def test_proof_sheet_symbols_decode_to_the_card(program, prefix, length, alphanumeric) -> None:
    numbers = [generate_card_number(prefix, length, program.luhn, alphanumeric=alphanumeric)
               for _ in range(12)]
    layout = Layout(name=default_name(program))
    cards = list(read_batch(_batch([[n] for n in numbers], "card"), program, layout))
    pages = [proofsheet.page_svg(cards[i:i + 10], "PROOF <&>", 1 + i // 10,
                                 proofsheet.pages(cards)) for i in range(0, len(cards), 10)]
    assert len(pages) == 2 and "PROOF &lt;&amp;&gt;" in pages[0]
    cells = [cell for page in pages for cell in _decoded_cells(page)]
    assert [c[0] for c in cells] == list(range(1, 13))
    for (_, printed, code128, qr), number in zip(cells, numbers):
        assert printed == number
        assert decoders.card_number(code128) == number
        assert decoders.decode_barcode(qr)["pan"] == number
        assert decoders.decode_barcode(code128) == {"symbology": "code128", "data": number,
                                                    "ai": None, "pan": number}


# --- the command -----------------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_issue_then_artwork(config_file, tmp_path) -> None:  # noqa: F811
    batch = tmp_path / "batch.csv"
    issued = tillgate(config_file, "cards", "issue", "--program", "secure", "--count", "23",
                      "--out", str(batch))
    assert issued.returncode == 0, issued.stderr
    cards = {row["card"]: row["pin"] for row in _rows(batch)}
    out, mailer, proof = tmp_path / "printer.csv", tmp_path / "mailer.csv", tmp_path / "proof"
    done = tillgate(config_file, "cards", "artwork", str(batch), "--program", "secure",
                    "--out", str(out), "--pins", "mailer", "--pin-mailer", str(mailer),
                    "--proof", str(proof), "--tracks", "1,2,3", "--expiry", "2912",
                    "--service-code", "120", "--lrc")
    assert done.returncode == 0, done.stderr
    assert "wrote 23 card(s)" in done.stderr and "wrote 3 proof page(s)" in done.stderr
    for path in (out, mailer, *proof.iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name for p in proof.iterdir()) == [
        "proof-0001.svg", "proof-0002.svg", "proof-0003.svg"]
    printed = _rows(out)
    assert [r["card"] for r in printed] == list(cards)
    for row in printed:
        number = row["card"]
        assert row["pin"] == ""  # the PINs went to the mailer file only
        t1, t2 = decoders.decode_track1(row["track1"]), decoders.decode_track2(row["track2"])
        assert (t1["pan"], t1["name"], t1["expiry"], t1["service_code"]) == (
            number, "SECURE CARD", "2912", "120")
        assert (t2["pan"], t2["expiry"], t2["service_code"]) == (number, "2912", "120")
        assert decoders.decode_track3(row["track3"])["pan"] == number
        assert decoders.decode_barcode(row["qr"])["pan"] == number
    mailed = _rows(mailer)
    assert [(m["sequence"], m["last4"], m["pin"]) for m in mailed] == [
        (r["sequence"], r["card"][-4:], cards[r["card"]]) for r in printed]
    assert not any(number in mailer.read_text() for number in cards)
    cells = _decoded_cells((proof / "proof-0003.svg").read_text())
    assert [(c[0], c[2]) for c in cells] == [(int(r["sequence"]), r["card"])
                                            for r in printed[20:]]
    texts = {t.text for page in proof.iterdir()
             for t in ET.fromstring(page.read_text()).iter(f"{SVG}text")}
    assert not texts & set(cards.values())  # no PIN on a proof


def test_artwork_refusals_write_nothing(config_file, tmp_path) -> None:  # noqa: F811
    batch = tmp_path / "batch.csv"
    numbers = [generate_card_number("603953", 19, True) for _ in range(3)]
    batch.write_text("card,pin\n" + "".join(f"{n},\n" for n in numbers) + "603953123,\n")
    out = tmp_path / "printer.csv"
    base = ("cards", "artwork", str(batch), "--out", str(out))
    for args, message in (
        (("--program", "gift"), f"{batch}: line 5: not a card number of program 'gift'; "
                                "nothing written"),
        (("--program", "secure"), "program 'secure' has PINs: choose --pins"),
        (("--program", "gift", "--pins", "mailer"), "--pins mailer needs --pin-mailer"),
        (("--program", "gift", "--tracks", "4"), "tracks: one or more of 1, 2, 3"),
        (("--program", "gift", "--name", "x"), "track 1 name must be 2 to 26 characters"),
        (("--program", "gift", "--expiry", "12"), "track 1 expiry (YYMM) must be 4 digits"),
        (("--program", "nope"), "unknown program 'nope'"),
    ):
        done = tillgate(config_file, *base, *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
        assert not out.exists()
    batch.write_text("card,pin\n" + "".join(f"{n},\n" for n in numbers))
    out.write_text("someone else's file\n")
    proof = tmp_path / "proof"
    done = tillgate(config_file, *base, "--program", "gift", "--proof", str(proof))
    assert done.returncode == 2 and "exists" in done.stderr
    assert out.read_text() == "someone else's file\n"
    out.unlink()
    proof.mkdir()
    (proof / "proof-0001.svg").write_text("old")
    done = tillgate(config_file, *base, "--program", "gift", "--proof", str(proof))
    assert done.returncode == 2 and "proof-0001.svg exists" in done.stderr
    assert not out.exists() and (proof / "proof-0001.svg").read_text() == "old"


def test_pins_in_the_printer_file_come_with_a_warning(config_file, tmp_path) -> None:  # noqa: F811
    batch = tmp_path / "batch.csv"
    issued = tillgate(config_file, "cards", "issue", "--program", "secure", "--count", "2",
                      "--out", str(batch))
    assert issued.returncode == 0, issued.stderr
    out = tmp_path / "printer.csv"
    done = tillgate(config_file, "cards", "artwork", str(batch), "--program", "secure",
                    "--out", str(out), "--pins", "include")
    assert done.returncode == 0, done.stderr
    assert "warning: " in done.stderr and "holds the PINs" in done.stderr
    assert [r["pin"] for r in _rows(out)] == [r["pin"] for r in _rows(batch)]
    for row in _rows(batch):
        assert row["card"] not in done.stderr and row["pin"] not in done.stderr.split()


def test_chromium_renders_a_proof_page_that_scans(chromium, shots, tmp_path) -> None:
    """A real browser draws a proof page; every barcode and QR code of its screenshot reads back
    to a card of the page (the screenshot is docs/img/portal-artwork-proof.png)."""
    numbers = [generate_card_number("603953", 19, True) for _ in range(10)]
    cards = list(read_batch(_batch([[n] for n in numbers], "card"), GIFT,
                            Layout(name=default_name(GIFT))))
    (tmp_path / "proof-0001.svg").write_text(proofsheet.page_svg(cards, "GIFT", 1, 1))
    # The page as an image of an HTML document, as a browser shows a linked proof: 4 CSS
    # pixels a millimetre, so a 0.25 mm bar module is 2 device pixels at scale 2.
    viewer = tmp_path / "proof.html"
    viewer.write_text('<!doctype html><body style="margin:0">'
                      '<img src="proof-0001.svg" width="840" height="1188"></body>')

    def scenario(browser):
        page = browser.new_page(viewport={"width": 840, "height": 1188}, device_scale_factor=2)
        page.goto(viewer.as_uri())
        shots(page, "artwork-proof")
        png = page.screenshot()
        page.close()
        return png

    png = chromium(scenario)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    codes = sorted(r.text for r in found if r.format.name == "Code128")
    qrs = sorted(decoders.decode_barcode(r.text)["pan"] for r in found
                 if r.format.name == "QRCode")
    assert codes == sorted(numbers) and qrs == sorted(numbers)


def test_the_cli_parser_does_not_import_the_symbol_libraries() -> None:
    """Every `tillgate` command builds the whole parser: python-barcode (and the Pillow it
    pulls in) is imported only by a run that draws a proof."""
    probe = ("import sys, gateway.cli.main as m; m.build_parser(); "
             "print(sorted({k.split('.')[0] for k in sys.modules} & {'barcode', 'PIL'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.fixture
def bureau_keyring(tmp_path):
    """A throwaway GnuPG home holding a card bureau's key pair (no passphrase), its agent
    stopped afterwards."""
    gpg = shutil.which("gpg")
    if gpg is None:
        if os.environ.get("TILLGATE_REQUIRE_GPG") == "1":
            pytest.fail("gpg is required here (TILLGATE_REQUIRE_GPG=1, set by .ci/run)")
        pytest.skip("gpg is not installed")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    made = subprocess.run([gpg, "--batch", "--passphrase", "", "--quick-gen-key",
                           "Card Bureau <bureau@example.org>", "default", "default", "never"],
                          capture_output=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    yield env
    subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, timeout=30)


def test_encrypted_to_the_bureaus_key(config_file, tmp_path, bureau_keyring) -> None:  # noqa: F811
    batch = tmp_path / "batch.csv"
    issued = tillgate(config_file, "cards", "issue", "--program", "secure", "--count", "3",
                      "--out", str(batch))
    assert issued.returncode == 0, issued.stderr
    pins = [r["pin"] for r in _rows(batch)]
    out, mailer = tmp_path / "printer.csv.gpg", tmp_path / "mailer.csv.gpg"
    args = ("cards", "artwork", str(batch), "--program", "secure", "--out", str(out),
            "--pins", "mailer", "--pin-mailer", str(mailer))
    env = {**bureau_keyring, "PYTHONPATH": str(ROOT)}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway.cli", *args, *extra,
                               "--config", config_file], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=120)

    refused = run("--encrypt-to", "nobody@example.org")
    assert refused.returncode == 2 and "gpg could not encrypt to 'nobody@example.org'" \
        in refused.stderr and "nothing written" in refused.stderr
    assert not out.exists() and not mailer.exists()
    done = run("--encrypt-to", "bureau@example.org")
    assert done.returncode == 0, done.stderr
    assert "encrypted to bureau@example.org" in done.stderr and "warning" not in done.stderr
    for path in (out, mailer):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        clear = subprocess.run(["gpg", "--batch", "--quiet", "--decrypt", str(path)],
                               capture_output=True, env=bureau_keyring, timeout=60)
        assert clear.returncode == 0, clear.stderr
        assert clear.stdout.startswith(b"sequence,")
    mailed = list(csv.DictReader(io.StringIO(subprocess.run(
        ["gpg", "--batch", "--quiet", "--decrypt", str(mailer)], capture_output=True,
        env=bureau_keyring, timeout=60).stdout.decode())))
    assert [m["pin"] for m in mailed] == pins
    assert b"sequence," not in out.read_bytes()  # no plaintext on the disk
