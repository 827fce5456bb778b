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
      body: JSON.stringify({ name: document.getElementById("name").value, password: document.getElementById("password").value }),
    });
    if (!r.ok) { err.textContent = r.status === 401 ? "Wrong user name or password." : (await r.text()); return; }
    let next = new URLSearchParams(location.search).get("next") || "/";
    if (!next.startsWith("/") || next.startsWith("//")) next = "/";
    location.replace(next);
  } catch (x) {
    err.textContent = "Cannot reach the console: " + x.message;
  } finally {
    btn.disabled = false;
  }
});
