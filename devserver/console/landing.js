// The reference landing page for https://<your shop>/referrals.list?applyCode=<CODE>
//
// 1. Keep the code from the link in the session until the friend registers.
// 2. Ask the public lookup who invited them and what they are offered (API key, no sign-in).
// 3. Fill the code into the registration form; forget it once the account exists.
"use strict";

const CODE_KEY = "referralCode";

const OFFER = `query ReferralOffer($code: String!) {
  referralOffer(code: $code) { valid code referrerFirstName siteName offerText }
}`;

const REGISTER = `mutation Register($input: RegistrationInput!) {
  register(input: $input) { customer { referralCode } error fieldErrors { fieldName validators } newCustomer }
}`;

// Why a field was refused, in a shopper's words (docs/api.md lists the validators).
const REASONS = {
  REFERRAL_CODE_NOT_FOUND: "We don't recognise this code. Check your friend's link, or leave it empty.",
  REFERRAL_CODE_DISABLED: "This code is no longer in use. You can sign up without it.",
  REFERRAL_CODE_OTHER_SITE: "This code belongs to another of our shops.",
  REFERRAL_PROGRAMME_DISABLED: "Referrals are paused at the moment. You can sign up without a code.",
  REQUIRED: "Please fill this in.",
  EMAIL_INVALID: "Enter an email address like name@example.com.",
  MAX_LENGTH: "This is too long.",
  INVALID_CHARACTERS: "This has characters we can't accept.",
  MUST_MATCH_SIGNED_IN_EMAIL: "Use the email you signed up with.",
};
const FIELDS = { fullName: "full-name", email: "email", referralCode: "referral-code" };

const $ = (id) => document.getElementById(id);

// Your storefront knows its API's address and public key; locally the server tells us.
const settings = fetch("/_local/config").then((answer) => answer.json());

async function graphql(query, variables, headers) {
  const { graphqlUrl } = await settings;
  const answer = await fetch(graphqlUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return answer.json();
}

function keptCode() {
  const fromLink = new URLSearchParams(location.search).get("applyCode");
  if (fromLink && fromLink.trim()) sessionStorage.setItem(CODE_KEY, fromLink.trim());
  return sessionStorage.getItem(CODE_KEY);
}

function say(text, kind) {
  $("offer-status").textContent = text;
  $("offer-status").className = `status ${kind || ""}`;
}

async function showOffer() {
  const code = keptCode();
  if (!code) return say("Create your account below.");
  $("referral-code").value = code;
  const { apiKey } = await settings;
  const answer = await graphql(OFFER, { code }, { "x-api-key": apiKey });
  const offer = answer.data && answer.data.referralOffer;
  if (!offer) {
    // The lookup is limited per visitor (so codes cannot be guessed); the code stays filled in anyway.
    const limited = answer.errors && answer.errors[0].errorType === "RateLimited";
    return say(`We couldn't check your invitation ${limited ? "right now: too many checks from your network" : "just now"}. You can still sign up below.`, "warn");
  }
  if (!offer.valid) {
    sessionStorage.removeItem(CODE_KEY);
    $("referral-code").value = "";
    return say(`We don't recognise the code "${code}". Check the link your friend sent you; you can still sign up without it.`, "bad");
  }
  say("");
  $("referrer").textContent = offer.referrerFirstName || "A friend";
  $("offer-site").textContent = offer.siteName;
  $("site-name").textContent = offer.siteName;
  $("offer-text").textContent = offer.offerText;
  $("offer").hidden = false;
  document.title = `You've been invited to ${offer.siteName}`;
  $("referral-code").value = offer.code;
}

function showFieldErrors(fieldErrors) {
  const ids = fieldErrors.map((f) => FIELDS[f.fieldName]).filter(Boolean);
  for (const { fieldName, validators } of fieldErrors) {
    const id = FIELDS[fieldName];
    if (!id) continue;
    $(`${id}-error`).textContent = validators.map((v) => REASONS[v] || v).join(" ");
    $(id).setAttribute("aria-invalid", "true");
  }
  if (ids.length) $(ids[0]).focus(); // straight to the first field to fix
}

async function register(event) {
  event.preventDefault();
  const form = event.target;
  for (const id of Object.values(FIELDS)) {
    $(`${id}-error`).textContent = "";
    $(id).removeAttribute("aria-invalid");
  }
  const input = { fullName: form.fullName.value.trim(), email: form.email.value.trim() };
  const problems = [];
  if (!input.fullName) problems.push({ fieldName: "fullName", validators: ["REQUIRED"] });
  if (!input.email) problems.push({ fieldName: "email", validators: ["REQUIRED"] });
  else if (!form.email.checkValidity()) problems.push({ fieldName: "email", validators: ["EMAIL_INVALID"] });
  if (problems.length) return showFieldErrors(problems);
  if (form.referralCode.value.trim()) input.referralCode = form.referralCode.value.trim();

  // On your storefront the friend signs up with your identity provider (Cognito) first, and the
  // API gets its ID token. Locally, LocalAuth asks the local server for an equivalent token.
  const { token } = await LocalAuth.signUp(input.email, input.fullName);
  const answer = await graphql(REGISTER, { input }, { Authorization: token });
  const outcome = answer.data && answer.data.register;
  const status = $("register-status");
  if (!outcome) {
    status.textContent = "Something went wrong. Please try again.";
    status.className = "status bad";
    return;
  }
  if (outcome.error) {
    showFieldErrors(outcome.fieldErrors || []);
    status.textContent = outcome.error === "ACCOUNT_EXISTS" ? "You already have an account: sign in instead." : "Please check the form.";
    status.className = "status bad";
    return;
  }
  sessionStorage.removeItem(CODE_KEY); // registered: the code has done its job
  form.hidden = true;
  status.textContent = `Welcome, ${input.fullName}! Your account is ready${input.referralCode ? " and your welcome offer is on its way" : ""}. Your own code to share: ${outcome.customer.referralCode}`;
  status.className = "status ok";
  status.focus(); // the form is gone: keep keyboard users where the news is
}

document.addEventListener("DOMContentLoaded", () => {
  $("register-form").addEventListener("submit", register);
  showOffer();
});
