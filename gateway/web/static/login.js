// The login page: log in, change a password that must be changed, then go where the user was going.
import { $, api, applyI18n, header, HOME, showError, t } from "./common.js";

let known = null; // the password just typed at login, so a forced change does not ask for it again
let role = null;

/** Only a path of this site (never "//elsewhere" or "https://..."): no open redirect. */
function target() {
  const next = new URLSearchParams(location.search).get("next") || "";
  if (/^\/(?![/\\])/.test(next) && next !== "/login") return next;
  return HOME[role] || "/";
}

function showChange(current) {
  known = current;
  $("#login").hidden = true;
  $("#change").hidden = false;
  $("#current-row").hidden = Boolean(current);
  $("#current").required = !current;
  (current ? $("#new") : $("#current")).focus();
}

async function start() {
  try {
    const user = await api("/api/v1/auth/me", { quiet: true, noRedirect: true });
    role = user.role;
    if (user.must_change) {
      showChange(null);
      return;
    }
    const already = $("#already");
    already.replaceChildren(`${t("login.as", { name: user.name })} `);
    const link = document.createElement("a");
    link.href = target();
    link.textContent = t("login.continue");
    already.append(link);
    already.hidden = false;
  } catch (err) {
    // nobody logged in: the form
  }
  $("#user").focus();
}

$("#login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("");
  const button = ev.submitter || $("#login button");
  button.disabled = true;
  const password = $("#password").value;
  try {
    const answer = await api("/api/v1/auth/login", { method: "POST", noRedirect: true,
      body: { user: $("#user").value.trim(), password } });
    role = answer.role;
    if (answer.must_change) showChange(password);
    else location.assign(target());
  } catch (err) {
    $("#password").select();
  } finally {
    button.disabled = false;
  }
});

$("#change").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("");
  const fresh = $("#new").value;
  if (fresh !== $("#repeat").value) {
    showError(t("pw.mismatch"));
    $("#repeat").select();
    return;
  }
  try {
    await api("/api/v1/auth/password", { method: "POST", noRedirect: true,
      body: { current: known ?? $("#current").value, new: fresh } });
    location.assign(target());
  } catch (err) {
    if (err.field === "current") { known = null; $("#current-row").hidden = false; }
  }
});

applyI18n(document);
header(null, "/login");
start();
