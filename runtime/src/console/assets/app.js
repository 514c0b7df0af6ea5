// The console: hash routes, sign-in, what the token may do, and the page frame. Each page
// (pages.js) renders into <main> and asks the /v1 API for its data.

import { api, ApiError, explain, setToken, token } from "./api.js";
import { h, fill } from "./ui.js";
import * as pages from "./pages.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");

/** What the signed-in token may do (GET /v1/whoami), or null before sign-in. */
let me = null;
/** Timers and listeners of the page on screen, stopped when another one opens. */
let cleanups = [];
/** Bumped on every route change, so a late answer for an old page is dropped. */
let generation = 0;

const routes = [
  [/^\/?$/, "overview", pages.overview],
  [/^\/jobs$/, "jobs", pages.jobs],
  [/^\/jobs\/([^/]+)$/, "jobs", pages.job],
  [/^\/submit$/, "submit", pages.submit],
  [/^\/tasks$/, "tasks", pages.tasks],
  [/^\/tasks\/([^/]+)$/, "tasks", pages.task],
  [/^\/nodes$/, "nodes", pages.nodes],
  [/^\/login$/, null, login],
];

/** Whether the signed-in token has `scope` (`admin` grants every scope). */
function can(scope) {
  return !!me && (me.scopes.includes(scope) || me.scopes.includes("admin"));
}

/** Show (or with null, clear) the banner: what went wrong and what to do. */
function alarm(err) {
  if (!err) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  if (err instanceof ApiError && err.status === 401) {
    signIn("Your token was not accepted (it is unknown, mistyped or revoked). Sign in again.");
    return;
  }
  const { title, detail } = explain(err);
  fill(banner, h("strong", {}, title), " ", detail);
  banner.hidden = false;
}

/** Ask the operator to sign in, then come back to where they were. */
function signIn(reason) {
  const back = location.hash.startsWith("#/login") ? "#/" : location.hash || "#/";
  sessionStorage.setItem("driftless.back", back);
  sessionStorage.setItem("driftless.reason", reason ?? "");
  if (location.hash !== "#/login") location.hash = "#/login";
  else route();
}

/** Ask for confirmation in the page's dialog: resolves true on Confirm. */
export function confirmDialog(title, text, ok = "Confirm") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const okButton = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  okButton.textContent = ok;
  return new Promise((resolve) => {
    const done = (answer) => {
      okButton.removeEventListener("click", yes);
      cancel.removeEventListener("click", no);
      dialog.removeEventListener("cancel", no);
      dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    okButton.addEventListener("click", yes);
    cancel.addEventListener("click", no);
    dialog.addEventListener("cancel", no);
    dialog.showModal();
    cancel.focus();
  });
}

function showWho() {
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  if (!me) {
    who.textContent = "";
    out.hidden = true;
    return;
  }
  who.textContent = me.open
    ? `Node ${me.node} · open mode (no token; loopback only) · may ${me.scopes.join(", ")}`
    : `Node ${me.node} · signed in as ${me.token} · may ${me.scopes.join(", ")}`;
  out.hidden = me.open;
}

/** GET /v1/whoami: true when the node answers this tab (open mode or a valid token). */
async function whoami() {
  try {
    me = await api("GET", "/v1/whoami");
  } catch (e) {
    me = null;
    if (e instanceof ApiError && e.status === 401) return false;
    throw e;
  }
  showWho();
  return true;
}

function login(root) {
  const reason = sessionStorage.getItem("driftless.reason");
  const error = h("p", { id: "login-error", class: "error", role: "alert" });
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "token-help login-error",
  });
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    reason ? h("p", {}, reason) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "help" },
      "A token made with ",
      h("code", {}, "driftless tokens create NAME --scope read"),
      " (or the admin token given to ",
      h("code", {}, "driftless serve"),
      "). It is kept in this tab only (sessionStorage) and sent as ",
      h("code", {}, "Authorization: Bearer"),
      ". A read-only token sees everything and changes nothing.",
    ),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    try {
      if (await whoami()) {
        sessionStorage.removeItem("driftless.reason");
        location.hash = sessionStorage.getItem("driftless.back") || "#/";
      } else {
        setToken(null);
        error.textContent =
          "That token was not accepted: it is unknown, mistyped or revoked. Check it, or ask an admin for one (driftless tokens list shows which exist).";
        input.focus();
      }
    } catch (err) {
      setToken(null);
      const { title, detail } = explain(err);
      error.textContent = `${title} ${detail}`;
    }
  });
  fill(root, form);
  input.focus();
}

async function route() {
  for (const stop of cleanups) stop();
  cleanups = [];
  const mine = ++generation;
  const hash = location.hash.replace(/^#/, "") || "/";
  if (!hash.startsWith("/")) return; // an in-page anchor, not a route
  const [path, queryText] = hash.split("?");
  const query = new URLSearchParams(queryText ?? "");
  const found = routes.find(([re]) => re.test(path));
  if (!found) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/" }, "Go to the overview.")));
    return;
  }
  const [re, nav, render] = found;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (render !== login && !me) {
    try {
      if (!(await whoami())) {
        signIn(token() ? "Your token was not accepted (it is unknown, mistyped or revoked). Sign in again." : "This node requires a token.");
        return;
      }
    } catch (err) {
      alarm(err);
      fill(main, h("h1", {}, "The console could not start"), h("p", {}, explain(err).detail), h("button", { type: "button", onclick: () => route() }, "Try again"));
      return;
    }
  }
  if (mine !== generation) return;
  alarm(null);
  const params = path.match(re).slice(1).map(decodeURIComponent);
  const ctx = {
    params,
    query,
    can,
    me,
    alarm,
    confirm: confirmDialog,
    /** Whether this page is still the one on screen. */
    live: () => mine === generation,
    /** Run `fn` now and every `ms` while the page is on screen; errors go to the banner. */
    every(ms, fn) {
      let timer = null;
      let stopped = false;
      const tick = async () => {
        try {
          await fn();
          if (!stopped) alarm(null);
        } catch (err) {
          if (!stopped) alarm(err);
        }
        if (!stopped) timer = setTimeout(tick, ms);
      };
      cleanups.push(() => {
        stopped = true;
        clearTimeout(timer);
      });
      return tick();
    },
    onLeave(fn) {
      cleanups.push(fn);
    },
  };
  main.replaceChildren();
  try {
    await render(main, ctx);
  } catch (err) {
    if (mine === generation) alarm(err);
  }
  if (mine === generation) document.title = `${main.querySelector("h1")?.textContent ?? "console"} · driftless`;
}

document.getElementById("signout").addEventListener("click", () => {
  setToken(null);
  me = null;
  showWho();
  signIn("Signed out.");
});
window.addEventListener("hashchange", route);
route();
