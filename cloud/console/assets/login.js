"use strict";
// Sign-in: POST /api/login as JSON, then go where the user was headed.
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = document.getElementById("err");
  err.textContent = "";
  const btn = document.getElementById("signin");
  btn.disabled = true;
  try {
    const r = await fetch("/api/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        name: document.getElementById("name").value, password: document.getElementById("password").value,
        next: new URLSearchParams(location.search).get("next") || "/",
      }),
    });
    if (!r.ok) { err.textContent = r.status === 401 ? "Wrong user name or password." : (await r.text()); return; }
    // The server answers the same-site path to go to ("/" for anything
    // else: other hosts, "//", "/\\", schemes, encoded forms of them).
    const s = await r.json();
    const next = new URL(typeof s.next === "string" ? s.next : "/", location.origin);
    location.replace(next.origin === location.origin ? next.href : "/");
  } catch (x) {
    err.textContent = "Cannot reach the console: " + x.message;
  } finally {
    btn.disabled = false;
  }
});
