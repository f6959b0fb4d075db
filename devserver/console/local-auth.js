// The local stand-in for a storefront's sign-in. On AWS the customer signs in (or up) with the
// Cognito user pool and the storefront sends that ID token to the API; locally the server mints
// an equivalent token (POST /_local/token). It also remembers who signed in on this browser, so
// the console can offer those people again. Nothing here belongs in a storefront.
"use strict";

const LocalAuth = (() => {
  const PEOPLE = "referrals.local.people";

  async function mint(sub, email, site) {
    const answer = await fetch("/_local/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sub, email, site: site || undefined }),
    });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.message || `The local server answered ${answer.status}`);
    return body.token;
  }

  function people() {
    try {
      return JSON.parse(localStorage.getItem(PEOPLE)) || [];
    } catch {
      return [];
    }
  }

  function remember(person) {
    const others = people().filter((p) => !(p.sub === person.sub && p.site === person.site));
    const merged = { ...people().find((p) => p.sub === person.sub && p.site === person.site), ...person };
    localStorage.setItem(PEOPLE, JSON.stringify([merged, ...others].slice(0, 20)));
  }

  // A new customer id, as Cognito would give one on sign-up.
  function newCustomerId() {
    const random = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
    return `customer-${random}`;
  }

  async function signIn(sub, email, site) {
    const token = await mint(sub, email, site);
    remember({ sub, email, site: site || "default" });
    return token;
  }

  async function signUp(email, name, site) {
    const sub = newCustomerId();
    const token = await mint(sub, email, site);
    remember({ sub, email, site: site || "default", name });
    return { sub, token };
  }

  return { signIn, signUp, people, remember };
})();
