// Refwire's dashboard: one page of plain JavaScript over the JSON API. It authenticates with the
// session cookie plus the CSRF token the server wrote into the page, and builds every element with
// the DOM API (never innerHTML), so nothing a user typed can become markup.
'use strict';

const config = JSON.parse(document.getElementById('refwire-config').textContent);
const page = document.getElementById('page');

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else if (name === 'value') node.value = value;
    else if (name === 'checked') node.checked = Boolean(value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child));
  return node;
}

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.field = error.field;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'X-CSRF-Token': config.csrf_token } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    // The session ended (expired, or its key was revoked): the page itself is now the sign-in form.
    location.reload();
    throw new ApiError(401, { message: 'Your session has ended; sign in again.' });
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || {});
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function when(value) {
  if (value === null || value === undefined) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

function badge(text, tone) {
  return h('span', { class: `badge ${tone || ''}` }, text);
}

function table(headers, rows) {
  return h('table', {},
    h('thead', {}, h('tr', {}, headers.map((header) => h('th', {}, header)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length }, 'Nothing here yet.'))));
}

function link(hash, text) {
  return h('a', { href: hash }, text);
}

function message(text, tone) {
  return h('p', { class: tone === 'error' ? 'error' : 'notice', role: tone === 'error' ? 'alert' : 'status' }, text);
}

// A button that asks once more before doing something that cannot be undone.
function confirmButton(label, action) {
  const button = h('button', { type: 'button', class: 'danger' }, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = `Confirm: ${label.toLowerCase()}`;
      return;
    }
    button.disabled = true;
    await action();
  });
  return button;
}

// Runs an action, showing its failure next to `where`.
async function attempt(where, action) {
  where.replaceChildren();
  try {
    await action();
  } catch (error) {
    where.replaceChildren(message(error.message, 'error'));
  }
}

// Shows an API validation error at its field (`[name=field]` in the form); other errors above it.
function showErrors(form, error) {
  for (const node of form.querySelectorAll('.field-error')) node.remove();
  for (const node of form.querySelectorAll('.invalid')) node.classList.remove('invalid');
  const status = form.querySelector('.form-status');
  if (!error.message) {
    status.replaceChildren();
    return;
  }
  const input = error.field && form.querySelector(`[name="${CSS.escape(error.field.split('.')[0])}"]`);
  if (input) {
    input.classList.add('invalid');
    input.setAttribute('aria-invalid', 'true');
    const note = h('p', { class: 'field-error', role: 'alert', 'data-field': error.field }, error.message);
    input.closest('.field').append(note);
    status.replaceChildren();
  } else {
    status.replaceChildren(message(error.message, 'error'));
  }
}

function field(label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hint ? h('div', {}, h('small', {}, hint)) : null);
}

function copyableSecret(label, secret) {
  const code = h('code', { id: 'shown-secret' }, secret);
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = 'Copied';
    } catch {
      getSelection().selectAllChildren(code);
      copy.textContent = 'Selected: press Ctrl+C';
    }
  });
  return h('div', { class: 'notice' },
    h('p', {}, `${label} It is shown only now: store it in your receiver's configuration.`),
    h('div', { class: 'secret' }, code, copy));
}

// --- overview --------------------------------------------------------------------------------

const DAY_MS = 24 * 60 * 60 * 1000;

// Referrals created in the last `days` days (the list runs newest first).
async function recentReferrals(days) {
  const since = Date.now() - days * DAY_MS;
  const recent = [];
  let cursor = null;
  do {
    const result = await api('GET', `/v1/api/referrals${query({ limit: 100, cursor })}`);
    for (const referral of result.referrals) {
      if (new Date(referral.created_at).getTime() < since) return recent;
      recent.push(referral);
    }
    cursor = result.next_cursor;
  } while (cursor);
  return recent;
}

function perDayChart(referrals, days) {
  const today = Math.floor(Date.now() / DAY_MS);
  const counts = new Array(days).fill(0);
  for (const referral of referrals) {
    const index = days - 1 - (today - Math.floor(new Date(referral.created_at).getTime() / DAY_MS));
    if (index >= 0 && index < days) counts[index] += 1;
  }
  const width = 640;
  const height = 160;
  const top = Math.max(1, ...counts);
  const slot = width / days;
  const bars = counts.map((count, index) => {
    const barHeight = (count / top) * (height - 30);
    const day = new Date((today - (days - 1 - index)) * DAY_MS).toISOString().slice(5, 10);
    return svg('g', {},
      svg('rect', { class: 'bar', x: index * slot + 2, y: height - 20 - barHeight, width: slot - 4, height: barHeight },
        svg('title', {}, `${day}: ${count}`)),
      index % 5 === 0 ? svg('text', { x: index * slot, y: height - 5 }, day) : null);
  });
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'Referrals created per day, last 30 days' },
    svg('text', { x: 0, y: 10 }, `max ${top}/day`), bars);
}

function funnel(milestones, referrals) {
  const steps = [['created', referrals.length]].concat(milestones.map((milestone) => [
    milestone,
    referrals.filter((referral) => referral.milestone_history.some((entry) => entry.milestone === milestone)).length,
  ]));
  const first = Math.max(1, referrals.length);
  return table(['Step', 'Referrals', 'Of created'], steps.map(([name, count]) => h('tr', {},
    h('td', {}, name),
    h('td', {}, count),
    h('td', {}, `${Math.round((count / first) * 100)}%`))));
}

async function overview() {
  const [stats, settings, board, recent] = await Promise.all([
    api('GET', '/v1/api/referral/stats'),
    api('GET', '/v1/api/referral/settings'),
    api('GET', '/v1/api/referral/leaderboard?limit=10'),
    recentReferrals(30),
  ]);
  const card = (label, value) => h('div', { class: 'card' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
  return [
    h('h1', {}, 'Overview'),
    h('div', { class: 'cards', id: 'stats' },
      card('referrals', stats.total),
      card('pending', stats.pending),
      card('completed', stats.completed),
      card('expired', stats.expired),
      card('conversion', `${(stats.conversion_rate * 100).toFixed(1)}%`),
      card('rewards claimed', stats.rewards_claimed)),
    h('h2', {}, 'Referrals per day, last 30 days'),
    perDayChart(recent, 30),
    h('h2', {}, 'Funnel by milestone, referrals created in the last 30 days'),
    funnel(settings.referral_milestones, recent),
    h('h2', {}, 'Top referrers'),
    table(['Rank', 'Referrer', 'Completed', 'Pending', 'Total'], board.leaderboard.map((row) => h('tr', {},
      h('td', {}, row.rank),
      h('td', {}, link(`#/referrals?q=${encodeURIComponent(row.referrer_id)}`, row.user_name || row.referrer_id)),
      h('td', {}, row.completed),
      h('td', {}, row.pending),
      h('td', {}, row.total)))),
  ];
}

// --- referrals -------------------------------------------------------------------------------

function statusBadge(status) {
  return badge(status, { completed: 'good', expired: 'bad' }[status]);
}

async function referrals(params) {
  const search = params.get('q') || '';
  const status = params.get('status') || '';
  let rows;
  let next = null;
  const byCode = search && await api('GET', `/v1/api/referral/${encodeURIComponent(search)}`).catch((error) => {
    if (error.status === 404 || error.status === 400) return null;
    throw error;
  });
  if (byCode) {
    rows = [byCode];
  } else {
    const result = await api('GET', `/v1/api/referrals${query({ status, referrer_id: search, cursor: params.get('cursor'), limit: 25 })}`);
    rows = result.referrals;
    next = result.next_cursor;
  }
  const form = h('form', { class: 'toolbar', id: 'referral-search' },
    h('div', {}, h('label', { for: 'q' }, 'Code or referrer user id'), h('input', { id: 'q', name: 'q', value: search })),
    h('div', {}, h('label', { for: 'status' }, 'Status'), h('select', { id: 'status', name: 'status' },
      ['', 'pending', 'completed', 'expired'].map((value) => h('option', { value, selected: value === status }, value || 'any')))),
    h('button', { type: 'submit' }, 'Search'),
    h('a', { class: 'button secondary', href: '/dashboard/export/referrals.csv', download: 'referrals.csv' }, 'Export CSV'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/referrals${query({ q: form.q.value.trim(), status: form.status.value })}`;
  });
  return [
    h('h1', {}, 'Referrals'),
    form,
    table(['Code', 'Referrer', 'Referee', 'Status', 'Milestone', 'Created'], rows.map((referral) => h('tr', {},
      h('td', {}, link(`#/referrals/${encodeURIComponent(referral.referral_code)}`, referral.referral_code)),
      h('td', {}, referral.user_name ? `${referral.user_name} (${referral.referrer_id})` : referral.referrer_id),
      h('td', {}, referral.referred_user_id || ''),
      h('td', {}, statusBadge(referral.status)),
      h('td', {}, referral.milestone || ''),
      h('td', {}, when(referral.created_at))))),
    next ? link(`#/referrals${query({ q: search, status, cursor: next })}`, 'Next page →') : null,
  ];
}

function rewardText(type, value) {
  return type === 'none' ? 'none' : `${type} ${value === null || value === undefined ? '' : value}`;
}

async function referral(params, code) {
  const [item, caused] = await Promise.all([
    api('GET', `/v1/api/referral/${encodeURIComponent(code)}`),
    api('GET', `/v1/api/referral/${encodeURIComponent(code)}/events`),
  ]);
  const facts = [
    ['Code', item.referral_code], ['URL', item.referral_url], ['Referrer', item.user_name ? `${item.user_name} (${item.referrer_id})` : item.referrer_id],
    ['Referee', item.referred_user_id || '—'], ['Status', statusBadge(item.status)], ['Created', when(item.created_at)],
    ['Completed', when(item.completed_at) || '—'], ['Expires', when(item.expires_at) || 'never'],
  ];
  return [
    h('p', {}, link('#/referrals', '← Referrals')),
    h('h1', {}, `Referral ${item.referral_code}`),
    table(['', ''], facts.map(([name, value]) => h('tr', {}, h('th', {}, name), h('td', {}, value)))),
    h('h2', {}, 'Milestones'),
    item.milestone_history.length
      ? h('ol', { class: 'timeline' }, item.milestone_history.map((entry) => h('li', {}, h('strong', {}, entry.milestone), ' · ', when(entry.timestamp))))
      : h('p', {}, 'No milestone reported yet.'),
    h('h2', {}, 'Rewards'),
    table(['Side', 'Reward', 'Claimed'], [
      h('tr', {}, h('td', {}, 'referrer'), h('td', {}, rewardText(item.reward_type, item.reward_value)), h('td', {}, item.reward_claimed ? 'yes' : 'no')),
      h('tr', {}, h('td', {}, 'referee'), h('td', {}, rewardText(item.referee_reward_type, item.referee_reward_value)), h('td', {}, item.referee_reward_claimed ? 'yes' : 'no')),
    ]),
    h('h2', {}, 'Events it caused'),
    eventTable(caused.events),
  ];
}

function eventTable(events) {
  return table(['Event', 'Type', 'Time', 'Data'], events.map((event) => h('tr', {},
    h('td', {}, h('code', {}, event.id)),
    h('td', {}, event.event),
    h('td', {}, when(event.timestamp)),
    h('td', {}, h('details', {}, h('summary', {}, 'payload'), h('pre', {}, JSON.stringify(event, null, 2)))))));
}

// --- participants ----------------------------------------------------------------------------

async function participants(params) {
  const search = params.get('q') || '';
  const byEmail = search.includes('@');
  const result = await api('GET', `/v1/participants${query({
    email: byEmail ? search : null, code: search && !byEmail ? search : null, cursor: params.get('cursor'), limit: 25,
  })}`);
  const status = h('div', {});
  const form = h('form', { class: 'toolbar' },
    h('div', {}, h('label', { for: 'participant-q' }, 'Email or code'), h('input', { id: 'participant-q', name: 'q', value: search })),
    h('button', { type: 'submit' }, 'Search'),
    h('a', { class: 'button secondary', href: '/dashboard/export/participants.csv', download: 'participants.csv' }, 'Export CSV'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/participants${query({ q: form.q.value.trim() })}`;
  });
  return [
    h('h1', {}, 'Participants'),
    form,
    status,
    table(['Name', 'Email', 'Code', 'Source', 'Referrals', 'Qualified', 'Joined', ''], result.participants.map((person) => h('tr', {},
      h('td', {}, person.name || ''),
      h('td', {}, person.email || person.user_id || ''),
      h('td', {}, h('code', {}, person.referral_code)),
      h('td', {}, person.source),
      h('td', {}, person.referrals_count),
      h('td', {}, person.qualified ? badge('qualified', 'good') : ''),
      h('td', {}, when(person.created_at)),
      h('td', {}, confirmButton('Delete', () => attempt(status, async () => {
        await api('DELETE', `/v1/participants/${encodeURIComponent(person.id)}`);
        route();
      })))))),
    result.next_cursor ? link(`#/participants${query({ q: search, cursor: result.next_cursor })}`, 'Next page →') : null,
  ];
}

// --- waitlists -------------------------------------------------------------------------------

async function waitlists() {
  const result = await api('GET', '/v1/waitlists');
  const form = h('form', { class: 'toolbar', id: 'new-waitlist' },
    h('div', { class: 'field' }, h('label', { for: 'waitlist-name' }, 'Name'), h('input', { id: 'waitlist-name', name: 'name', required: true })),
    h('div', { class: 'field' }, h('label', { for: 'waitlist-boost' }, 'Places gained per referral'), h('input', { id: 'waitlist-boost', name: 'boost', type: 'number', min: 0, value: 1 })),
    h('button', { type: 'submit' }, 'Create waitlist'),
    h('div', { class: 'form-status' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await api('POST', '/v1/waitlists', { name: form.name.value, boost: Number(form.boost.value) });
      location.hash = `#/waitlists/${created.id}`;
    } catch (error) {
      showErrors(form, error);
    }
  });
  return [
    h('h1', {}, 'Waitlists'),
    table(['Name', 'Id', 'Boost', 'Signups', 'Created'], result.waitlists.map((list) => h('tr', {},
      h('td', {}, link(`#/waitlists/${list.id}`, list.name)),
      h('td', {}, h('code', {}, list.id)),
      h('td', {}, list.boost),
      h('td', {}, list.signup_count),
      h('td', {}, when(list.created_at))))),
    h('h2', {}, 'New waitlist'),
    form,
  ];
}

async function waitlist(params, id) {
  const [list, result] = await Promise.all([
    api('GET', `/v1/waitlists/${encodeURIComponent(id)}`),
    api('GET', `/v1/waitlists/${encodeURIComponent(id)}/signups${query({ cursor: params.get('cursor'), limit: 50 })}`),
  ]);
  const status = h('div', {});
  const signupPath = (signup) => `/v1/waitlists/${encodeURIComponent(id)}/signups/${encodeURIComponent(signup.id)}`;
  return [
    h('p', {}, link('#/waitlists', '← Waitlists')),
    h('h1', {}, list.name),
    h('p', {}, `Id `, h('code', {}, list.id), ` · ${list.signup_count} signups · a referral moves the referrer up ${list.boost} places`),
    status,
    table(['Position', 'Email', 'Name', 'Code', 'Joined', 'Move to', ''], result.signups.map((signup) => {
      const position = h('input', { type: 'number', min: 1, value: signup.position, 'aria-label': `New position for ${signup.email || signup.id}` });
      const move = h('button', { type: 'button', class: 'secondary' }, 'Move');
      move.addEventListener('click', () => attempt(status, async () => {
        await api('PATCH', signupPath(signup), { position: Number(position.value) });
        route();
      }));
      return h('tr', { 'data-signup': signup.id },
        h('td', { class: 'position' }, signup.position),
        h('td', {}, signup.email || ''),
        h('td', {}, signup.name || ''),
        h('td', {}, h('code', {}, signup.referral_code)),
        h('td', {}, when(signup.created_at)),
        h('td', {}, position, ' ', move),
        h('td', {}, confirmButton('Remove', () => attempt(status, async () => {
          await api('DELETE', signupPath(signup));
          route();
        }))));
    })),
    result.next_cursor ? link(`#/waitlists/${encodeURIComponent(id)}${query({ cursor: result.next_cursor })}`, 'Next page →') : null,
  ];
}

// --- webhooks --------------------------------------------------------------------------------

function health(webhook) {
  if (!webhook.active) return badge(webhook.disabled_reason ? `disabled: ${webhook.disabled_reason}` : 'disabled', 'bad');
  if (webhook.failing_since && webhook.next_probe_at) {
    return badge(`failing since ${when(webhook.failing_since)}; breaker open, others wait until ${when(webhook.next_probe_at)}`, 'bad');
  }
  if (webhook.failing_since) return badge(`failing since ${when(webhook.failing_since)}`, 'bad');
  return badge('healthy', 'good');
}

function eventPicker(selected) {
  return h('div', { class: 'checks field', id: 'event-picker' },
    h('input', { type: 'hidden', name: 'events' }),
    config.event_types.map((type) => h('label', {},
      h('input', { type: 'checkbox', name: 'event', value: type, checked: selected.includes(type) }), ' ', type)));
}

function webhookFields(form) {
  return {
    name: form.elements.name.value,
    url: form.elements.url.value,
    events: [...form.querySelectorAll('input[name=event]:checked')].map((box) => box.value),
    rate_limit: optionalNumber(form.elements.rate_limit.value),
  };
}

function webhookForm(webhook, submitLabel) {
  return h('form', { id: 'webhook-form' },
    field('Name', h('input', { id: 'webhook-name', name: 'name', value: webhook.name || '', required: true })),
    field('Endpoint URL', h('input', { id: 'webhook-url', name: 'url', type: 'url', size: 60, value: webhook.url || '', required: true })),
    field('Rate limit (attempts per second, empty: none)', h('input', { id: 'webhook-rate_limit', name: 'rate_limit', type: 'number', min: 1, value: webhook.rate_limit === null || webhook.rate_limit === undefined ? '' : webhook.rate_limit })),
    h('label', {}, 'Events'),
    eventPicker(webhook.events || []),
    h('div', { class: 'form-status' }),
    h('button', { type: 'submit' }, submitLabel));
}

async function webhooks() {
  const result = await api('GET', '/v1/webhooks');
  const created = h('div', { id: 'created-webhook' });
  const form = webhookForm({}, 'Create webhook');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const webhook = await api('POST', '/v1/webhooks', webhookFields(form));
      form.reset();
      created.replaceChildren(
        copyableSecret(`Webhook "${webhook.name}" created. Its signing secret:`, webhook.signing_secret),
        h('p', {}, link(`#/webhooks/${webhook.id}`, 'Open the webhook →')));
      const list = await api('GET', '/v1/webhooks');
      listTable.replaceWith(listTable = webhookTable(list.webhooks));
    } catch (error) {
      showErrors(form, error);
    }
  });
  let listTable = webhookTable(result.webhooks);
  return [h('h1', {}, 'Webhooks'), listTable, h('h2', {}, 'New webhook'), created, form];
}

function webhookTable(list) {
  return table(['Name', 'URL', 'Events', 'Health'], list.map((webhook) => h('tr', {},
    h('td', {}, link(`#/webhooks/${webhook.id}`, webhook.name)),
    h('td', {}, h('code', {}, webhook.url)),
    h('td', {}, webhook.events.join(', ')),
    h('td', {}, health(webhook)))));
}

async function webhook(params, id) {
  const path = `/v1/webhooks/${encodeURIComponent(id)}`;
  const state = params.get('state') || '';
  const [item, log] = await Promise.all([
    api('GET', path),
    api('GET', `${path}/deliveries${query({ state, cursor: params.get('cursor'), limit: 25 })}`),
  ]);
  const status = h('div', { id: 'webhook-status' });
  const form = webhookForm(item, 'Save');
  const active = h('input', { type: 'checkbox', id: 'webhook-active', name: 'active', checked: item.active });
  form.insertBefore(h('div', { class: 'field' }, h('label', {}, active, ' Enabled')), form.querySelector('.form-status'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('PATCH', path, { ...webhookFields(form), active: active.checked });
      route();
    } catch (error) {
      showErrors(form, error);
    }
  });
  const sendTest = h('button', { type: 'button', id: 'send-test' }, 'Send test event');
  sendTest.addEventListener('click', () => attempt(status, async () => {
    const sent = await api('POST', `${path}/test`);
    status.replaceChildren(message(`Test event ${sent.event_id} queued; it appears in the log below once delivered.`));
  }));
  const refresh = h('button', { type: 'button', class: 'secondary', id: 'refresh-log' }, 'Refresh log');
  refresh.addEventListener('click', () => route());
  const rotate = confirmButton('Rotate secret', () => attempt(status, async () => {
    const rotated = await api('POST', `${path}/rotate-secret`);
    status.replaceChildren(copyableSecret('New signing secret (the old one keeps signing for the grace period):', rotated.signing_secret));
  }));
  const remove = confirmButton('Delete webhook', () => attempt(status, async () => {
    await api('DELETE', path);
    location.hash = '#/webhooks';
  }));
  const since = h('input', { type: 'datetime-local', id: 'recover-since' });
  const recover = h('button', { type: 'button', class: 'secondary' }, 'Resend failed since');
  recover.addEventListener('click', () => attempt(status, async () => {
    if (!since.value) throw new Error('Pick a time to resend failed deliveries from.');
    const result = await api('POST', `${path}/recover${query({ since: new Date(since.value).toISOString() })}`);
    status.replaceChildren(message(`${result.resent} deliveries queued again.`));
  }));
  const filter = h('select', { id: 'delivery-state', 'aria-label': 'Delivery state' },
    ['', 'pending', 'retrying', 'succeeded', 'failed'].map((value) => h('option', { value, selected: value === state }, value || 'any state')));
  filter.addEventListener('change', () => { location.hash = `#/webhooks/${id}${query({ state: filter.value })}`; });
  return [
    h('p', {}, link('#/webhooks', '← Webhooks')),
    h('h1', {}, item.name, ' ', health(item)),
    h('div', { class: 'toolbar' }, sendTest, rotate, remove),
    status,
    form,
    h('h2', {}, 'Delivery log'),
    h('div', { class: 'toolbar' }, filter, refresh, since, recover),
    deliveryTable(log.deliveries, status),
    log.next_cursor ? link(`#/webhooks/${id}${query({ state, cursor: log.next_cursor })}`, 'Next page →') : null,
  ];
}

function deliveryTable(deliveries, status) {
  return h('table', { id: 'delivery-log' },
    h('thead', {}, h('tr', {}, ['Created', 'Event', 'State', 'Attempts', 'Last status', 'ms', ''].map((name) => h('th', {}, name)))),
    h('tbody', {}, deliveries.length ? deliveries.flatMap((delivery) => {
      const detail = h('tr', { hidden: true }, h('td', { colspan: 7 }));
      const show = h('button', { type: 'button', class: 'secondary' }, 'Attempts');
      show.addEventListener('click', () => attempt(status, async () => {
        const full = await api('GET', `/v1/deliveries/${encodeURIComponent(delivery.id)}`);
        const request = full.request;
        detail.firstChild.replaceChildren(
          table(['#', 'At', 'Status', 'ms', 'Error', 'Response excerpt'], full.attempt_log.map((entry) => h('tr', {},
            h('td', {}, entry.n), h('td', {}, when(entry.at)), h('td', {}, entry.status === null ? '' : entry.status),
            h('td', {}, entry.response_ms), h('td', {}, entry.error || ''), h('td', {}, h('pre', {}, entry.response_excerpt || ''))))),
          request
            ? h('details', { class: 'request' }, h('summary', {}, `Request: ${request.method} ${request.url}`),
              h('pre', {}, Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`).join('\n') + '\n\n' + request.body))
            : h('p', {}, 'The request is no longer available (the webhook was deleted or the event expired).'));
        detail.hidden = !detail.hidden;
      }));
      const resend = h('button', { type: 'button', class: 'secondary' }, 'Resend');
      resend.addEventListener('click', () => attempt(status, async () => {
        await api('POST', `/v1/deliveries/${encodeURIComponent(delivery.id)}/retry`);
        status.replaceChildren(message(`Delivery ${delivery.id} queued again.`));
      }));
      return [h('tr', { 'data-delivery': delivery.id },
        h('td', {}, when(delivery.created_at)),
        h('td', {}, delivery.event),
        h('td', {}, badge(delivery.state, { succeeded: 'good', failed: 'bad' }[delivery.state])),
        h('td', { class: 'attempts' }, delivery.attempts),
        h('td', {}, delivery.last_status === null ? (delivery.last_error || '') : delivery.last_status),
        h('td', {}, delivery.response_ms === null ? '' : delivery.response_ms),
        h('td', {}, show, ' ', resend)), detail];
    }) : h('tr', {}, h('td', { colspan: 7 }, 'No deliveries yet.'))));
}

// --- events ----------------------------------------------------------------------------------

async function events(params) {
  const result = await api('GET', `/v1/events${query({ after: params.get('after'), limit: 50 })}`);
  const last = result.events[result.events.length - 1];
  return [
    h('h1', {}, 'Events'),
    h('p', {}, 'The outbox, oldest first: every event Refwire recorded and fanned out to webhooks.'),
    eventTable(result.events),
    result.events.length === 50 ? link(`#/events${query({ after: last.id })}`, 'Next page →') : null,
  ];
}

// --- settings --------------------------------------------------------------------------------

const REWARD_TYPES = ['none', 'points', 'credit', 'discount', 'custom'];

function rewardValue(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  return /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
}

function optionalNumber(text) {
  return text.trim() ? Number(text) : null;
}

async function settings() {
  const current = await api('GET', '/v1/api/referral/settings');
  const input = (name, attrs) => h('input', { id: `setting-${name}`, name, ...attrs });
  const select = (name, value) => h('select', { id: `setting-${name}`, name },
    REWARD_TYPES.map((type) => h('option', { value: type, selected: type === value }, type)));
  const text = (value) => (value === null || value === undefined ? '' : String(value));
  const form = h('form', { id: 'settings-form' },
    field('Referrals enabled', input('enabled', { type: 'checkbox', checked: current.enabled })),
    field('Referral expiry (days, empty: never)', input('referral_expiration_days', { type: 'number', value: text(current.referral_expiration_days) })),
    field('Pending referrals per referrer (empty: unlimited)', input('referral_max_per_user', { type: 'number', value: text(current.referral_max_per_user) })),
    field('Milestones, in funnel order (comma-separated)', input('referral_milestones', { size: 60, value: current.referral_milestones.join(', ') })),
    field('Reward milestone', input('referral_reward_milestone', { value: current.referral_reward_milestone })),
    field('Referrer reward type', select('reward_type', current.reward_type)),
    field('Referrer reward value', input('reward_value', { value: text(current.reward_value) })),
    field('Referee reward type', select('referee_reward_type', current.referee_reward_type)),
    field('Referee reward value', input('referee_reward_value', { value: text(current.referee_reward_value) })),
    field('Referral URL template (must contain {code})', input('referral_url_template', { size: 60, value: current.referral_url_template })),
    field('Code length', input('code_length', { type: 'number', value: current.code_length })),
    field('Origins allowed to use the publishable key, one per line',
      h('textarea', { id: 'setting-allowed_origins', name: 'allowed_origins', rows: 3, cols: 50 }, current.allowed_origins.join('\n')),
      'For the widget and browser apps, e.g. https://shop.example.com'),
    h('div', { class: 'form-status' }),
    h('button', { type: 'submit' }, 'Save settings'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = (name) => form.elements[name].value;
    const update = {
      enabled: form.elements.enabled.checked,
      referral_expiration_days: optionalNumber(value('referral_expiration_days')),
      referral_max_per_user: optionalNumber(value('referral_max_per_user')),
      referral_milestones: value('referral_milestones').split(',').map((name) => name.trim()).filter(Boolean),
      referral_reward_milestone: value('referral_reward_milestone').trim(),
      reward_type: value('reward_type'),
      reward_value: rewardValue(value('reward_value')),
      referee_reward_type: value('referee_reward_type'),
      referee_reward_value: rewardValue(value('referee_reward_value')),
      referral_url_template: value('referral_url_template').trim(),
      code_length: Number(value('code_length')),
      allowed_origins: value('allowed_origins').split('\n').map((origin) => origin.trim()).filter(Boolean),
    };
    try {
      await api('PUT', '/v1/api/referral/settings', update);
      showErrors(form, {});
      form.querySelector('.form-status').replaceChildren(message('Settings saved.'));
    } catch (error) {
      showErrors(form, error);
    }
  });
  return [h('h1', {}, 'Settings'), form];
}

// --- navigation ------------------------------------------------------------------------------

const ROUTES = [
  [/^#\/?$/, overview],
  [/^#\/referrals$/, referrals],
  [/^#\/referrals\/([^/]+)$/, referral],
  [/^#\/participants$/, participants],
  [/^#\/waitlists$/, waitlists],
  [/^#\/waitlists\/([^/]+)$/, waitlist],
  [/^#\/webhooks$/, webhooks],
  [/^#\/webhooks\/([^/]+)$/, webhook],
  [/^#\/events$/, events],
  [/^#\/settings$/, settings],
];

async function route() {
  const [path, search] = (location.hash || '#/').split('?');
  for (const anchor of document.querySelectorAll('header nav a')) {
    const section = anchor.getAttribute('href');
    anchor.classList.toggle('current', section === '#/' ? path === '#/' || path === '#' : path.startsWith(section));
  }
  for (const [pattern, view] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    page.replaceChildren(h('p', {}, 'Loading…'));
    try {
      const content = await view(new URLSearchParams(search || ''), ...match.slice(1).map(decodeURIComponent));
      page.replaceChildren(...[content].flat().filter(Boolean));
    } catch (error) {
      page.replaceChildren(message(error.message, 'error'));
    }
    return;
  }
  page.replaceChildren(message('There is no such page.', 'error'));
}

document.getElementById('program-name').textContent = config.program.name;
window.addEventListener('hashchange', route);
route();
