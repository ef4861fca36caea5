"""What every generated HTML page shares: escaping, the page frame with its inline style and
filter/sort script, tables in filterable wrappers, and deterministic Plotly figures."""
from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

PLOTLY_JS = "plotly.min.js"
FILTER_COLUMNS = ("experiment", "model", "backend", "arm", "strategy")

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#fafbfc}
header{background:#24292f;color:#fff;padding:.8em 1.5em}header a{color:#9ecbff;margin-right:1.2em}
main{padding:0 1.5em 3em}h2{margin-top:2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
.table-wrap{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:12.5px;margin:.4em 0 1em}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;white-space:nowrap}
th{background:#eef1f4;cursor:pointer;position:sticky;top:0}th.sorted-asc:after{content:" \\25B2"}
th.sorted-desc:after{content:" \\25BC"}tr:nth-child(even) td{background:#f6f8fa}
.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.4em 0;font-size:13px}
.filters select,.filters input{font-size:13px}.count{color:#57606a;font-size:12px}
.note{font-size:13px;color:#32383f;white-space:pre-wrap}.caption{font-weight:600;margin:1em 0 .2em}
.plot{width:100%;max-width:1100px;min-height:380px}details{margin:.5em 0}summary{cursor:pointer;color:#0969da}
"""

# Filters and sorting for every table in a ``.bench-table`` wrapper (the page's only script
# besides Plotly's). A select per column named in data-filter, a text box over all cells.
SCRIPT = """
(function(){
  function cellText(row,i){var c=row.cells[i];return c?c.textContent.trim():"";}
  function num(t){var m=t.match(/^[-+]?\\d*\\.?\\d+(e[-+]?\\d+)?/i);return m?parseFloat(m[0]):NaN;}
  document.querySelectorAll(".bench-table").forEach(function(wrap){
    var table=wrap.querySelector("table");if(!table||!table.tHead||!table.tBodies.length)return;
    var heads=Array.prototype.map.call(table.tHead.rows[0].cells,function(th){return th.textContent.trim();});
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    var bar=document.createElement("div");bar.className="filters";
    var wanted=(wrap.getAttribute("data-filter")||"").split(",");var selects=[];
    heads.forEach(function(h,i){
      if(wanted.indexOf(h)<0)return;
      var values={};rows.forEach(function(r){values[cellText(r,i)]=1;});
      var keys=Object.keys(values).sort();if(keys.length<2)return;
      var label=document.createElement("label");label.textContent=h+" ";
      var sel=document.createElement("select");sel.setAttribute("data-column",h);
      sel.appendChild(new Option("all",""));keys.forEach(function(k){sel.appendChild(new Option(k,k));});
      label.appendChild(sel);bar.appendChild(label);selects.push([i,sel]);sel.addEventListener("change",apply);
    });
    var text=document.createElement("input");text.type="search";text.placeholder="filter rows";
    text.addEventListener("input",apply);bar.appendChild(text);
    var count=document.createElement("span");count.className="count";bar.appendChild(count);
    wrap.insertBefore(bar,wrap.firstChild);
    function apply(){
      var q=text.value.toLowerCase(),shown=0;
      rows.forEach(function(r){
        var ok=selects.every(function(s){return !s[1].value||cellText(r,s[0])===s[1].value;});
        if(ok&&q)ok=r.textContent.toLowerCase().indexOf(q)>=0;
        r.style.display=ok?"":"none";if(ok)shown++;
      });
      count.textContent=shown+" of "+rows.length+" rows";
    }
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener("click",function(){
        var asc=!th.classList.contains("sorted-asc");
        Array.prototype.forEach.call(table.tHead.rows[0].cells,function(o){o.classList.remove("sorted-asc","sorted-desc");});
        th.classList.add(asc?"sorted-asc":"sorted-desc");
        rows.sort(function(a,b){var x=cellText(a,i),y=cellText(b,i),nx=num(x),ny=num(y);
          var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
    apply();
  });
  if(window.Plotly){
    document.querySelectorAll("script.plot-figure").forEach(function(block){
      var fig=JSON.parse(block.textContent);
      Plotly.newPlot(block.getAttribute("data-plot"),fig.data,fig.layout,{responsive:true,displaylogo:false});
    });
  }
})();
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


class _TableText(HTMLParser):
    """Re-writes a table as the table tags alone, every text escaped: what a record's string can
    smuggle into a table (another element, an attribute, a script) is dropped, its text kept."""

    TAGS = ("table", "thead", "tbody", "tr", "th", "td")
    ALIGN = re.compile(r"text-align:\s*(left|right|center);?")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.TAGS:
            style = dict(attrs).get("style") or ""
            align = self.ALIGN.fullmatch(style.strip())
            self.out.append(f'<{tag} style="text-align: {align.group(1)};">' if align and tag in ("th", "td")
                            else f"<{tag}>")

    def handle_endtag(self, tag):
        if tag in self.TAGS:
            self.out.append(f"</{tag}>")

    def handle_data(self, data):
        self.out.append(esc(data))


def safe_table(table_html: str) -> str:
    """``table_html`` (tabulate's, or anything claiming to be a table) as table tags and escaped text only."""
    parser = _TableText()
    parser.feed(table_html)
    parser.close()
    return "".join(parser.out)


def wrap_tables(body_html: str, table_id: str) -> str:
    """tabulate's HTML tables inside a filterable wrapper, re-written by ``safe_table``; text lines as
    escaped notes. Nothing of ``body_html`` reaches the page unescaped: a note holding lines that look
    like a table becomes a table of escaped text."""
    out, lines, in_table, n = [], body_html.split("\n"), False, 0
    buffer: list[str] = []
    for line in lines:
        if line.startswith("<table"):
            in_table, buffer = True, [line]
            continue
        if in_table:
            buffer.append(line)
            if line.startswith("</table>"):
                in_table = False
                out.append(f'<div class="bench-table table-wrap" id="{esc(table_id)}-{n}" '
                           f'data-filter="{",".join(FILTER_COLUMNS)}">' + safe_table("\n".join(buffer)) + "</div>")
                n += 1
            continue
        if line.strip():
            text = line.lstrip("#").strip()
            out.append(f'<p class="{"caption" if line.startswith("#") or not line.startswith("-") else "note"}">'
                       f"{esc(text)}</p>")
    if in_table:  # never closed: not a table tabulate wrote; its lines as text
        out.extend(f'<p class="note">{esc(line)}</p>' for line in buffer if line.strip())
    return "\n".join(out)


def relative_link(path: str, text: str) -> str:
    """A link to a relative path (a record beside the site): each segment percent-encoded, so no
    name (``javascript:...``, ``//host``, a quote) can make it another scheme, host or attribute."""
    from urllib.parse import quote
    parts = path.split("/")
    if path.startswith("/") or any(p in ("",) for p in parts):
        raise ValueError(f"not a relative path: {path!r}")
    href = "/".join(quote(p, safe="") for p in parts)
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def filter_table(headers: list[str], rows: list[list[str]], table_id: str | None = None,
                 filters=FILTER_COLUMNS) -> str:
    """A table in the filter/sort wrapper (site.js) built from cells that are already HTML: the
    caller escapes what comes from a record. Headers are escaped here."""
    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="bench-table table-wrap"{ident} data-filter="{",".join(filters)}">'
            f"<table>\n<thead>\n<tr>{head}</tr>\n</thead>\n<tbody>\n{body}\n</tbody>\n</table></div>")


def figure_div(div_id: str, fig) -> str:
    """A deterministic Plotly div and its figure as JSON data (sorted keys) in a non-executable
    ``application/json`` block, which ``site.js`` draws: no inline script (the pages' CSP forbids it)."""
    spec = json.loads(fig.to_json())
    figure = json.dumps({"data": spec.get("data", []), "layout": spec.get("layout", {})}, sort_keys=True,
                        separators=(",", ":"))
    # "<" never appears raw inside the data block (a record's string cannot close it or open a comment)
    figure = figure.replace("<", "\\u003c")
    return (f'<div class="plot" id="{esc(div_id)}"></div>\n'
            f'<script type="application/json" class="plot-figure" data-plot="{esc(div_id)}">{figure}</script>')


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())


SITE_JS, SITE_CSS = "site.js", "site.css"   # written once beside the pages (write_site)


# No inline script runs, nothing is fetched from elsewhere: scripts only from files beside the page
# (Chromium counts a file:// page's own folder as neither 'self' nor safe, hence file:); Plotly styles
# its SVG with inline style attributes and <style> elements, hence 'unsafe-inline' for styles only.
CSP = ("default-src 'none'; script-src 'self' file:; style-src 'self' file: 'unsafe-inline'; img-src 'self' file: "
       "data:; font-src 'self' file: data:; connect-src 'none'; base-uri 'none'; form-action 'none'; object-src 'none'")


def page(title: str, nav: list[tuple[str, str]], body: str, plots: bool) -> str:
    links = "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in nav)
    script = f'<script src="{PLOTLY_JS}"></script>\n' if plots else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n<title>{esc(title)}</title>\n'
            f'<link rel="stylesheet" href="{SITE_CSS}">\n{script}</head>\n<body>\n<header><strong>bench</strong> &middot; '
            f"{links}</header>\n<main>\n<h1>{esc(title)}</h1>\n{body}\n</main>\n"
            f'<script src="{SITE_JS}"></script>\n</body>\n</html>\n')
