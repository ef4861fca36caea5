"""What every generated HTML page shares: escaping, the page frame with its inline style and
filter/sort script, tables in filterable wrappers, and deterministic Plotly figures."""
from __future__ import annotations

import html
import json

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
})();
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def wrap_tables(body_html: str, table_id: str) -> str:
    """tabulate's HTML tables inside a filterable wrapper; text lines as escaped notes."""
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
                out.append(f'<div class="bench-table table-wrap" id="{table_id}-{n}" '
                           f'data-filter="{",".join(FILTER_COLUMNS)}">' + "\n".join(buffer) + "</div>")
                n += 1
            continue
        if line.strip():
            text = line.lstrip("#").strip()
            out.append(f'<p class="{"caption" if line.startswith("#") or not line.startswith("-") else "note"}">'
                       f"{esc(text)}</p>")
    return "\n".join(out)


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
    """A deterministic Plotly div: the figure's JSON (sorted keys) and one call to draw it."""
    spec = json.loads(fig.to_json())
    data = json.dumps(spec.get("data", []), sort_keys=True, separators=(",", ":"))
    layout = json.dumps(spec.get("layout", {}), sort_keys=True, separators=(",", ":"))
    # "</" never appears raw inside a script element (a record's string cannot close it)
    data, layout = data.replace("</", "<\\/"), layout.replace("</", "<\\/")
    return (f'<div class="plot" id="{div_id}"></div>\n<script>Plotly.newPlot("{div_id}",{data},{layout},'
            '{"responsive":true,"displaylogo":false});</script>')


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())


SITE_JS, SITE_CSS = "site.js", "site.css"   # written once beside the pages (write_site)


def page(title: str, nav: list[tuple[str, str]], body: str, plots: bool) -> str:
    links = "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in nav)
    script = f'<script src="{PLOTLY_JS}"></script>\n' if plots else ""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
            f'<link rel="stylesheet" href="{SITE_CSS}">\n{script}</head>\n<body>\n<header><strong>bench</strong> &middot; '
            f"{links}</header>\n<main>\n<h1>{esc(title)}</h1>\n{body}\n</main>\n"
            f'<script src="{SITE_JS}"></script>\n</body>\n</html>\n')
