
(function(){
  function cellText(row,i){var c=row.cells[i];return c?c.textContent.trim():"";}
  function num(t){var m=t.match(/^[-+]?\d*\.?\d+(e[-+]?\d+)?/i);return m?parseFloat(m[0]):NaN;}
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
