// The playground page: polls /api/state, draws a phone-like chat pane per person and the
// mailbox, and turns clicks and typing into /api calls (each an update the emulator sends
// to the bot, as Telegram would). Bot texts are Telegram HTML: only Telegram's tags survive.
"use strict";

const state = { data: null, rendered: new Map(), focus: null, letter: null, mailKey: "" };
const $ = (sel, root = document) => root.querySelector(sel);

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  let json = {};
  try { json = await res.json(); } catch (_) { /* empty body */ }
  if (!res.ok) throw new Error(json.error || `${res.status} ${res.statusText}`);
  return json;
}

function notice(text, isError) {
  const n = $("#notice");
  n.textContent = text;
  n.classList.toggle("error", !!isError);
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { n.hidden = true; }, 6000);
}

// ---- money --------------------------------------------------------------------------------

const EXPONENT = { JPY: 0, KRW: 0, XTR: 0, VND: 0, CLP: 0, ISK: 0, HUF: 2 };
function money(minor, currency) {
  const exp = EXPONENT[currency] ?? 2;
  const value = minor / Math.pow(10, exp);
  if (currency === "XTR") return `⭐ ${value.toLocaleString("en")}`;
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency, minimumFractionDigits: exp, maximumFractionDigits: exp }).format(value);
  } catch (_) {
    return `${value.toFixed(exp)} ${currency}`;
  }
}

// ---- Telegram HTML → safe DOM ------------------------------------------------------------

const ALLOWED = new Set(["B", "STRONG", "I", "EM", "U", "INS", "S", "STRIKE", "DEL", "A", "CODE", "PRE", "BLOCKQUOTE", "TG-SPOILER", "SPAN"]);

function telegramHtml(text, personId) {
  const doc = new DOMParser().parseFromString(`<body>${text}</body>`, "text/html");
  const out = document.createDocumentFragment();
  // inLink: inside an <a>, where neither another link nor a bare URL may start.
  const copy = (from, to, inLink) => {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        autolink(node.textContent, to, personId, !inLink);
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        const nestedLink = node.tagName === "A" && inLink;
        if (!ALLOWED.has(node.tagName) || nestedLink) { copy(node, to, inLink); continue; }
        const el = document.createElement(node.tagName === "TG-SPOILER" ? "span" : node.tagName.toLowerCase());
        if (node.tagName === "TG-SPOILER" || (node.tagName === "SPAN" && node.classList.contains("tg-spoiler"))) el.className = "spoiler";
        if (node.tagName === "A") linkify(el, node.getAttribute("href") || "", personId);
        copy(node, el, inLink || node.tagName === "A");
        to.appendChild(el);
      }
    }
  };
  copy(doc.body, out, false);
  return out;
}

// Telegram shows bare URLs in a text as links.
function autolink(text, to, personId, enabled = true) {
  if (!enabled) { to.appendChild(document.createTextNode(text)); return; }
  text.split(/(https?:\/\/[^\s<>"]+)/).forEach((part, i) => {
    if (i % 2 === 1) {
      // A sentence's full stop or closing bracket is not part of the URL.
      const url = part.replace(/[.,;:!?)\]]+$/, "");
      const a = document.createElement("a");
      a.textContent = url;
      linkify(a, url, personId);
      to.appendChild(a);
      if (url.length < part.length) to.appendChild(document.createTextNode(part.slice(url.length)));
    } else if (part) {
      to.appendChild(document.createTextNode(part));
    }
  });
}

function linkify(a, href, personId) {
  if (!/^(https?:|tg:)/i.test(href)) return;
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.addEventListener("click", (ev) => {
    if (openDeepLink(href, personId)) ev.preventDefault();
  });
}

// A t.me link to our bot opens in the pane of the person who clicked it: Telegram's "Start".
function openDeepLink(href, personId) {
  let url;
  try { url = new URL(href, location.href); } catch (_) { return false; }
  const bot = state.data && state.data.bot.username;
  const own = url.origin === location.origin && url.pathname.startsWith("/t.me/");
  const path = own ? url.pathname.slice("/t.me".length) : url.pathname;
  if (!bot || !(url.hostname === "t.me" || own) || path.replace(/^\//, "").toLowerCase() !== bot.toLowerCase()) return false;
  const start = url.searchParams.get("start");
  const person = personId ?? null;
  if (person === null) {
    // Nobody at the table owns the link: ask whose Telegram opens it, as the service's pages do.
    location.href = `/t.me/${encodeURIComponent(bot)}${start ? `?start=${encodeURIComponent(start)}` : ""}`;
    return true;
  }
  say(person, start ? `/start ${start}` : "/start");
  const pane = paneOf(person);
  if (pane) { pane.scrollIntoView({ behavior: "smooth", inline: "center", block: "nearest" }); pane.classList.add("flash"); setTimeout(() => pane.classList.remove("flash"), 900); }
  return true;
}

// ---- panes --------------------------------------------------------------------------------

function paneOf(id) { return document.querySelector(`.pane[data-person="${id}"]`); }

function makePane(person) {
  const pane = $("#pane-template").content.firstElementChild.cloneNode(true);
  pane.dataset.person = person.id;
  $(".avatar", pane).textContent = person.name.slice(0, 1).toUpperCase();
  $(".avatar", pane).style.background = `hsl(${(person.id * 67) % 360} 55% 52%)`;
  $(".name", pane).textContent = person.name;
  const handle = [person.username ? `@${person.username}` : null, `id ${person.id}`, person.email].filter(Boolean).join(" · ");
  $(".handle", pane).textContent = handle;
  $(".role", pane).textContent = person.role;
  pane.addEventListener("focusin", () => { state.focus = person.id; });
  $(".composer", pane).addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $(".compose", pane);
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(person.id, text).then((ok) => { if (!ok && !input.value) input.value = text; });
  });
  $(".menu", pane).addEventListener("click", () => toggleMenu(pane));
  $(".cancel-pay", pane).addEventListener("click", () => { $(".paysheet", pane).hidden = true; });
  $(".paysheet", pane).addEventListener("submit", (ev) => { ev.preventDefault(); submitPayment(pane, person.id); });
  return pane;
}

// Telegram's "Menu" button: the commands the bot registered with setMyCommands.
function toggleMenu(pane) {
  const menu = $(".command-menu", pane);
  if (!menu.hidden) { menu.hidden = true; return; }
  const commands = (state.data && state.data.commands) || [];
  menu.replaceChildren(...commands.map((c) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    const name = document.createElement("strong");
    name.textContent = `/${c.command}`;
    const what = document.createElement("span");
    what.textContent = c.description;
    b.append(name, what);
    b.addEventListener("click", () => {
      menu.hidden = true;
      const input = $(".compose", pane);
      input.value = `/${c.command} `;
      input.focus();
    });
    li.appendChild(b);
    return li;
  }));
  if (!commands.length) {
    const li = document.createElement("li");
    li.textContent = "The bot has not registered a command menu.";
    menu.appendChild(li);
  }
  menu.hidden = false;
}

async function say(personId, text) {
  try { await api("/api/say", { person: personId, text }); poll(); return true; }
  catch (e) { notice(e.message, true); return false; }
}

async function press(personId, messageId, data, button) {
  button.disabled = true;
  try {
    const r = await api("/api/press", { person: personId, message_id: messageId, data });
    if (r.toast) toast(personId, r.toast);
  } catch (e) { notice(e.message, true); }
  finally { button.disabled = false; poll(); }
}

function toast(personId, text) {
  const pane = paneOf(personId);
  if (!pane) return;
  const t = $(".toast", pane);
  t.textContent = text;
  t.hidden = false;
  clearTimeout(t.timer);
  t.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function openPaysheet(person, message) {
  const pane = paneOf(person.id);
  const sheet = $(".paysheet", pane);
  const inv = message.invoice;
  const total = (inv.prices || []).reduce((s, p) => s + (p.amount || 0), 0);
  $(".pay-what", sheet).textContent = `${inv.title} · ${money(total, inv.currency)}${inv.is_flexible ? " + delivery" : ""}`;
  sheet.dataset.message = message.id;
  const set = (name, value) => { const el = sheet.elements[name]; if (el && !el.value) el.value = value || ""; };
  set("name", person.name);
  for (const k of ["country_code", "state", "city", "street_line1", "post_code"]) set(k, person.address[k]);
  $(".address", sheet).hidden = !(inv.need_shipping_address || inv.is_flexible);
  $(".pay-error", sheet).hidden = true;
  $(".confirm-pay", sheet).textContent = `Pay ${money(total, inv.currency)}`;
  sheet.hidden = false;
  sheet.elements.name.focus();
}

async function submitPayment(pane, personId) {
  const sheet = $(".paysheet", pane);
  const body = { person: personId, message_id: Number(sheet.dataset.message) };
  for (const k of ["name", "country_code", "state", "city", "street_line1", "post_code"]) body[k] = sheet.elements[k].value;
  const button = $(".confirm-pay", sheet);
  button.disabled = true;
  button.textContent = "Paying…";
  try {
    const r = await api("/api/pay", body);
    sheet.hidden = true;
    toast(personId, `Paid ${money(r.paid, r.currency)}`);
  } catch (e) {
    const err = $(".pay-error", sheet);
    err.textContent = e.message;
    err.hidden = false;
    button.textContent = "Pay";
  } finally {
    button.disabled = false;
    poll();
  }
}

function messageNode(person, m) {
  const row = document.createElement("div");
  row.className = `msg ${m.from_bot ? "bot" : "me"}`;
  row.dataset.message = m.id;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  if (m.payment) {
    row.className = "msg service";
    bubble.textContent = `You paid ${money(m.payment.total_amount, m.payment.currency)}`;
  } else if (m.invoice) {
    bubble.classList.add("invoice");
    const inv = m.invoice;
    const total = (inv.prices || []).reduce((s, p) => s + (p.amount || 0), 0);
    const title = document.createElement("div"); title.className = "inv-title"; title.textContent = inv.title;
    const desc = document.createElement("div"); desc.className = "inv-desc"; desc.textContent = inv.description;
    const lines = document.createElement("ul"); lines.className = "inv-lines";
    for (const p of inv.prices || []) {
      const li = document.createElement("li");
      const l = document.createElement("span"); l.textContent = p.label;
      const a = document.createElement("span"); a.textContent = money(p.amount, inv.currency);
      li.append(l, a); lines.appendChild(li);
    }
    const sum = document.createElement("div"); sum.className = "inv-total"; sum.textContent = `Total ${money(total, inv.currency)}${inv.is_flexible ? " + delivery" : ""}`;
    bubble.append(title, desc, lines, sum);
  } else if (m.text != null) {
    if (m.from_bot && (m.parse_mode || "").toUpperCase() === "HTML") bubble.appendChild(telegramHtml(m.text, person.id));
    else bubble.textContent = m.text;
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = (m.edited ? "edited · " : "") + time(m.date);
  bubble.appendChild(meta);
  row.appendChild(bubble);

  let keyboard = m.keyboard;
  if (m.invoice && !keyboard) keyboard = [[{ text: "Pay", pay: true }]];
  if (m.invoice && m.invoice.paid) keyboard = [[{ text: "Paid ✓", paid: true }]];
  if (keyboard) {
    const kb = document.createElement("div");
    kb.className = "keyboard";
    for (const line of keyboard) {
      const r = document.createElement("div");
      r.className = "kb-row";
      for (const b of line) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.className = "kb";
        btn.textContent = b.text;
        if (b.paid) {
          btn.classList.add("paid");
          btn.disabled = true;
        } else if (b.pay) {
          btn.classList.add("pay");
          btn.addEventListener("click", () => openPaysheet(person, m));
        } else if (b.callback_data != null) {
          btn.addEventListener("click", () => press(person.id, m.id, b.callback_data, btn));
        } else if (b.url) {
          btn.classList.add("link-button");
          btn.addEventListener("click", () => { if (!openDeepLink(b.url, person.id)) window.open(b.url, "_blank", "noopener"); });
        } else {
          btn.disabled = true;
        }
        r.appendChild(btn);
      }
      kb.appendChild(r);
    }
    row.appendChild(kb);
  }
  return row;
}

function time(unix) {
  if (!unix) return "";
  return new Date(unix * 1000).toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function renderPanes(people) {
  const panes = $("#panes");
  for (const person of people) {
    let pane = paneOf(person.id);
    if (!pane) { pane = makePane(person); panes.appendChild(pane); }
    const key = JSON.stringify(person.chat);
    if (state.rendered.get(person.id) === key) continue;
    state.rendered.set(person.id, key);
    const list = $(".messages", pane);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    list.replaceChildren(...person.chat.map((m) => messageNode(person, m)));
    if (!person.chat.length) {
      // Telegram's empty chat with a bot: a START button that sends /start.
      const empty = document.createElement("div");
      empty.className = "empty";
      const note = document.createElement("span");
      note.textContent = `${person.name} has not talked to the bot yet.`;
      const start = document.createElement("button");
      start.type = "button";
      start.className = "start-button";
      start.textContent = "START";
      start.addEventListener("click", () => say(person.id, "/start"));
      empty.append(note, start);
      list.appendChild(empty);
    }
    if (atBottom || list.dataset.seen !== "1") list.scrollTop = list.scrollHeight;
    list.dataset.seen = "1";
  }
}

// ---- mailbox ------------------------------------------------------------------------------

function renderMail(mail) {
  const key = JSON.stringify(mail);
  if (key === state.mailKey) return;
  state.mailKey = key;
  $("#mail-count").textContent = mail.length;
  const list = $("#letters");
  list.replaceChildren(...mail.slice().reverse().map((l) => {
    const li = document.createElement("li");
    li.className = "letter";
    li.dataset.id = l.id;
    li.dataset.to = l.to;
    if (state.letter === l.id) li.classList.add("open");
    const to = document.createElement("div"); to.className = "to"; to.textContent = l.to;
    const subject = document.createElement("div"); subject.className = "subject"; subject.textContent = l.subject;
    li.append(to, subject);
    li.tabIndex = 0;
    li.addEventListener("click", () => openLetter(l.id));
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") openLetter(l.id); });
    return li;
  }));
  if (!mail.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No mail yet. Invitations, shipping requests and discount notices land here.";
    list.appendChild(li);
  }
}

async function openLetter(id) {
  let letter;
  try { letter = await api(`/api/mail/${encodeURIComponent(id)}`); }
  catch (e) { notice(e.message, true); return; }
  state.letter = id;
  document.querySelectorAll(".letter").forEach((li) => li.classList.toggle("open", li.dataset.id === id));
  const view = $("#letter-view");
  view.hidden = false;
  view.dataset.to = letter.to;
  $("#letter-subject").textContent = letter.subject;
  $("#letter-to").textContent = letter.to;
  $("#letter-date").textContent = letter.date ? new Date(letter.date).toLocaleString("en-GB") : "";
  const recipient = state.data.people.find((p) => p.email && letter.to.split(", ").includes(p.email));
  const personId = recipient ? recipient.id : null;

  const text = $("#letter-text");
  text.replaceChildren();
  autolink(letter.text || "", text, personId);

  const frame = $("#letter-html");
  frame.onload = () => {
    const doc = frame.contentDocument;
    if (!doc) return;
    const follow = (ev) => {
      const a = ev.target.closest && ev.target.closest("a[href]");
      if (!a) return;
      ev.preventDefault();
      const href = a.getAttribute("href");
      if (!openDeepLink(href, personId) && /^https?:/i.test(href)) window.open(href, "_blank", "noopener");
    };
    doc.addEventListener("click", follow);
    doc.addEventListener("auxclick", follow);
  };
  // Mail is laid out for a 600-px column; this pane is narrower.
  const fit = "<style>html,body{margin:0}table{max-width:100% !important}img{max-width:100%;height:auto}</style>";
  frame.srcdoc = fit + (letter.html || `<pre>${escapeHtml(letter.text || "")}</pre>`);
  showTab(letter.html ? "html" : "text");
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function showTab(which) {
  $("#letter-html").hidden = which !== "html";
  $("#letter-text").hidden = which !== "text";
  $("#show-html").classList.toggle("active", which === "html");
  $("#show-text").classList.toggle("active", which === "text");
}

// ---- the loop -----------------------------------------------------------------------------

function renderClock(clock) {
  $("#clock-now").textContent = new Date(clock.now * 1000).toLocaleString("en-GB", { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  const h = Math.round(clock.skipped_secs / 3600);
  $("#clock-skip").textContent = h > 0 ? `(${h} h ahead of real time)` : "(real time)";
}

async function poll() {
  clearTimeout(poll.timer);
  try {
    const data = await api("/api/state");
    state.data = data;
    renderClock(data.clock);
    renderPanes(data.people);
    renderMail(data.mail);
    if (data.violations.length && data.violations.length !== poll.violations) {
      poll.violations = data.violations.length;
      notice(`The bot made a call Telegram would reject: ${data.violations[data.violations.length - 1]}`, true);
    }
    document.body.dataset.ready = "1";
  } catch (e) {
    notice(`The playground is not answering (${e.message}). Is groupbuy playground still running?`, true);
  }
  poll.timer = setTimeout(poll, 700);
}

$("#forward-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const hours = Number($("#forward-hours").value);
  try {
    await api("/api/forward", { hours });
    notice(`The clock moved ${hours} h forward; the sweep settles whatever expired.`);
  } catch (e) { notice(e.message, true); }
  poll();
});

$("#add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("#add-name");
  try {
    const email = $("#add-email");
    const p = await api("/api/people", { name: input.value, email: email.value });
    input.value = "";
    email.value = "";
    notice(`${p.name} joined (id ${p.id}${p.username ? `, @${p.username}` : ""}).`);
  } catch (e) { notice(e.message, true); }
  poll();
});

$("#use-suggestion").addEventListener("click", () => {
  const bob = state.data && state.data.people.find((p) => p.role === "organiser");
  if (!bob) return;
  const input = $(".compose", paneOf(bob.id));
  input.value = $("#suggestion").textContent;
  input.focus();
});
$("#show-html").addEventListener("click", () => showTab("html"));
$("#show-text").addEventListener("click", () => showTab("text"));
$("#close-letter").addEventListener("click", () => { $("#letter-view").hidden = true; state.letter = null; document.querySelectorAll(".letter.open").forEach((li) => li.classList.remove("open")); });

// Back from a t.me link opened for someone: show their chat.
const opened = new URLSearchParams(location.search).get("chat");
if (opened) {
  history.replaceState(null, "", "/");
  const show = () => {
    const pane = paneOf(opened);
    if (!pane) { setTimeout(show, 200); return; }
    pane.scrollIntoView({ inline: "center", block: "nearest" });
    pane.classList.add("flash");
    setTimeout(() => pane.classList.remove("flash"), 1200);
  };
  show();
}

poll();
