"""Real documents written by the tests: a PDF printed by headless Chromium, a DOCX from
python-docx, a PPTX from python-pptx, a saved web page, an Obsidian vault, and the bad ones
(corrupt, encrypted, scanned)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

LECTURE_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Storage</title>
<style>.page{page-break-after:always}</style></head><body>
<div class="page"><h1>Lecture 3: Storage</h1>
<h2>Object storage</h2>
<p>Amazon S3 stores objects in buckets. A single object can be up to 5 TB.</p>
<ul><li>Standard: frequently accessed data</li>
<li>Glacier Deep Archive: cheapest, retrieval within 12 hours</li></ul></div>
<div class="page"><h2>Block storage</h2>
<p>Amazon EBS volumes attach to one EC2 instance in one Availability Zone.</p>
<h3>Snapshots</h3><p>EBS snapshots are stored incrementally in Amazon S3.</p></div>
<div><h2>File storage</h2>
<p>Amazon EFS is a managed NFS file system that many instances mount at once.</p></div>
</body></html>"""

# A page with only a drawing: printed, it is a PDF without a text layer (like a scan).
SCAN_HTML = """<!doctype html><html><body>
<svg width="300" height="200"><rect width="300" height="200" fill="#333"/></svg>
</body></html>"""

SAVED_PAGE = """<!doctype html><html><head><title>Queues</title></head><body>
<nav><a href="/">Home</a></nav>
<h1>Messaging</h1><h2>SQS</h2>
<ul><li>Standard queues deliver at least once</li><li>FIFO queues keep the order</li></ul>
<h2>SNS</h2><p>SNS pushes a message to every subscriber of a topic.</p>
</body></html>"""

VAULT_NOTE = """---
title: Serverless
tags:
  - aws
  - "#exam"
---
# Lambda

Put the code behind [[API Gateway]] and keep state in [[DynamoDB|a table]].
![[lambda-diagram.png]]
- A function runs for at most 15 minutes, see [[Lambda limits#Timeout]].
"""


def print_pdf(html: str, out: Path) -> Path:
    """Print an HTML page to PDF with headless Chromium (skips the test without it)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium) to print a PDF")
    page = out.with_suffix(".html")
    page.write_text(html, encoding="utf-8")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--no-pdf-header-footer", f"--print-to-pdf={out}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    page.unlink()
    return out


def write_docx(out: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Networking notes", 1)
    d.add_paragraph("A VPC is a private network in one AWS Region.")
    d.add_heading("Subnets", 2)
    for text in ["Public subnet: route to an internet gateway", "Private subnet: no direct route"]:
        d.add_paragraph(text, style="List Bullet")
    d.add_heading("Security", 2)
    for text in ["Security groups are stateful", "Network ACLs are stateless"]:
        d.add_paragraph(text, style="List Number")
    d.save(str(out))
    return out


def write_pptx(out: Path) -> Path:
    import pptx

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Databases"
    slide.placeholders[1].text = "Week 5"
    for title, items in [("RDS", ["Multi-AZ keeps a standby copy for failover"]),
                         ("Aurora", ["Aurora supports up to 15 read replicas",
                                     "Aurora storage grows to 128 TB"])]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        frame = slide.placeholders[1].text_frame
        frame.text = items[0]
        for item in items[1:]:
            frame.add_paragraph().text = item
        slide.notes_slide.notes_text_frame.text = f"Speaker note on {title}"
    deck.save(str(out))
    return out


def write_encrypted(source: Path, out: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    with out.open("wb") as f:
        writer.write(f)
    return out


def make_folder(root: Path) -> Path:
    """A notes folder with one of each kind, a vault, and three documents that must be
    skipped (corrupt, encrypted, scanned)."""
    root.mkdir(parents=True, exist_ok=True)
    print_pdf(LECTURE_HTML, root / "lecture.pdf")
    (root / "slides").mkdir(exist_ok=True)
    write_pptx(root / "slides" / "databases.pptx")
    write_docx(root / "networking.docx")
    (root / "queues.html").write_text(SAVED_PAGE, encoding="utf-8")
    vault = root / "vault"
    (vault / ".obsidian").mkdir(parents=True, exist_ok=True)
    (vault / ".obsidian" / "workspace.md").write_text("# Workspace\nnot a note\n")
    (vault / ".trash").mkdir(exist_ok=True)
    (vault / ".trash" / "deleted.md").write_text("# Deleted\nthrown away\n")
    (vault / "serverless.md").write_text(VAULT_NOTE, encoding="utf-8")
    data = (root / "lecture.pdf").read_bytes()
    (root / "broken.pdf").write_bytes(data[: len(data) // 3])
    write_encrypted(root / "lecture.pdf", root / "locked.pdf")
    print_pdf(SCAN_HTML, root / "scan.pdf")
    (root / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    return root


def copy_folder(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
