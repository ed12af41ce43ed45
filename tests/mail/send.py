"""Send one message with Python's smtplib, a real SMTP client, and print
how the server answered as JSON: {"ok": true} or {"code": N, "message": M}.

  send.py HOST PORT TO KIND [--starttls CA-FILE] [--from ADDRESS]

KIND: plain, multipart (text and html), attachment (text and a PDF),
unparseable (bytes that are no MIME message), big:N (a text body of N
bytes), loop:VAL-ID (a message carrying that val in its loop header).
"""

import json
import smtplib
import ssl
import sys
from email.message import EmailMessage


def message(kind, sender, to):
    msg = EmailMessage()
    msg["From"] = f"Ann Example <{sender}>"
    msg["To"] = to
    msg["Cc"] = "carol@example.com"
    msg["Subject"] = f"{kind} hello"
    msg["Message-ID"] = f"<{kind}.1@example.com>"
    if kind == "plain":
        msg.set_content("Hi there,\n.a line that starts with a dot\nbye\n")
    elif kind == "multipart":
        msg.set_content("the text part\n")
        msg.add_alternative("<p>the <b>html</b> part</p>\n", subtype="html")
    elif kind == "attachment":
        msg.set_content("see the attachment\n")
        msg.add_attachment(b"%PDF-1.4 " + bytes(range(256)) * 10, maintype="application",
                           subtype="pdf", filename="report.pdf")
    elif kind.startswith("big:"):
        msg.set_content("x" * int(kind[4:]) + "\n")
    elif kind.startswith("loop:"):
        msg["X-Valbox-Loop"] = kind[5:]
        msg.set_content("round and round\n")
    else:
        raise SystemExit(f"unknown kind {kind}")
    return msg


def main():
    args = sys.argv[1:]
    host, port, to, kind = args[0], int(args[1]), args[2], args[3]
    ca = args[args.index("--starttls") + 1] if "--starttls" in args else None
    sender = args[args.index("--from") + 1] if "--from" in args else "ann@example.com"
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.ehlo("client.example.com")
            if ca:
                smtp.starttls(context=ssl.create_default_context(cafile=ca))
                smtp.ehlo("client.example.com")
            if kind == "unparseable":
                smtp.sendmail(sender, [to], b"\x00\xff\xfe not a message at all\r\n")
            else:
                smtp.send_message(message(kind, sender, to), from_addr=sender, to_addrs=[to])
        print(json.dumps({"ok": True, "tls": bool(ca)}))
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        print(json.dumps({"code": code, "message": text.decode()}))
    except smtplib.SMTPResponseException as e:
        print(json.dumps({"code": e.smtp_code, "message": e.smtp_error.decode(errors="replace")}))


main()
