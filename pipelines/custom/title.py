#!/usr/bin/python3
"""title: a processor command in Python. For each fetched page (the
fetcher's output item) it answers with the page's title and the links it
holds; a failed fetch is answered with a failure ('!' line), so that the
pipeline's on-error decides what becomes of it. The protocol is in
docs/processor.md.
"""
import html.parser
import json
import sys


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.title, self.links, self.in_title = "", [], False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        elif tag == "a":
            self.links += [value for name, value in attrs if name == "href" and value]

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False

    def handle_data(self, data):
        if self.in_title:
            self.title += data


for line in sys.stdin:
    page = json.loads(line)
    if "error" in page:
        print("!%s: %s" % (page.get("kind", "error"), page["error"]))
    else:
        parsed = Page()
        body = page.get("body")
        parsed.feed(body if isinstance(body, str) else "")
        print(json.dumps({"url": page["url"], "status": page["status"],
                          "title": parsed.title.strip(), "links": parsed.links,
                          "bytes": len(body) if isinstance(body, str) else 0}))
    print(flush=True)  # the empty line: this item is done
