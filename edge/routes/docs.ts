// The docs page: a self-contained HTML page that renders /v1/openapi.json (no third-party scripts, works offline).
import { Hono } from 'hono';
import type { AppEnv } from '../app-types.ts';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HyperDreamBooth API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem}.op{border:1px solid #e3e3e3;border-radius:6px;margin:.6rem 0;padding:.5rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:600;text-transform:uppercase}.get{color:#0a7}.post{color:#07c}.delete{color:#c33}
code{background:#f5f5f5;padding:0 .25rem;border-radius:3px}details pre{background:#fafafa;overflow:auto;padding:.5rem;font-size:13px}
</style></head><body>
<h1>HyperDreamBooth API</h1>
<p>One selfie in, a personalized text-to-image model out. Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>.
Errors are <code>{"error":{"code","message","details"}}</code>. The machine-readable document is
<a href="/v1/openapi.json">/v1/openapi.json</a> (OpenAPI 3.1).</p>
<div id="ops">Loading…</div>
<script>
fetch('/v1/openapi.json').then(r=>r.json()).then(doc=>{
  const byTag={};
  for(const [path,item] of Object.entries(doc.paths))for(const [method,op] of Object.entries(item)){
    const tag=(op.tags||['other'])[0];(byTag[tag]=byTag[tag]||[]).push({path,method,op});}
  const esc=s=>String(s).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
  document.getElementById('ops').innerHTML=Object.entries(byTag).map(([tag,ops])=>'<h2>'+esc(tag)+'</h2>'+ops.map(({path,method,op})=>
    '<div class="op"><span class="m '+method+'">'+method+'</span> <code>'+esc(path)+'</code> '+esc(op.summary||'')+
    '<details><summary>details</summary><pre>'+esc(JSON.stringify({parameters:op.parameters,requestBody:op.requestBody,responses:Object.keys(op.responses||{})},null,2))+'</pre></details></div>').join('')).join('');
});
</script></body></html>`;

export function docsRouter() {
  const app = new Hono<AppEnv>();
  app.get('/docs', (c) => c.html(PAGE));
  return app;
}
