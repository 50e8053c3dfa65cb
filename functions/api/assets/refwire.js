// Refwire's embeddable widget: a user's referral link with copy and share, and a waitlist sign-up
// that shows the place in line. No dependencies; it talks to the Refwire that served it, with a
// publishable key, from any origin listed in the program's `allowed_origins` setting.
//
//   <div id="refwire-widget"></div>
//   <script src="https://YOUR-REFWIRE/refwire.js" data-key="rw_pub_..."
//           data-user-id="user_123" data-user-name="Ada"      (a signed-in user's referral link)
//           data-waitlist="WAITLIST-UUID"                      (or: a waitlist sign-up form)
//           async></script>
//
// Or mount it yourself: Refwire.mount(element, { key, userId, userName, waitlist }).
(function () {
  'use strict';

  var script = document.currentScript;
  var base = script ? new URL(script.src).origin : '';

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    for (var name in attrs || {}) node.setAttribute(name, attrs[name]);
    return node;
  }

  function call(key, method, path, body) {
    var init = { method: method, headers: { Authorization: 'Bearer ' + key } };
    if (body) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(base + path, init).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error((data && data.error && data.error.message) || 'HTTP ' + response.status);
        return data;
      });
    });
  }

  function style(node, css) {
    for (var name in css) node.style[name] = css[name];
    return node;
  }

  function shareRow(url) {
    var row = style(el('div', '', { class: 'refwire-share' }), { display: 'flex', gap: '6px', alignItems: 'center', flexWrap: 'wrap' });
    var field = style(el('input', '', { readonly: '', value: url, 'aria-label': 'Your referral link', class: 'refwire-link' }), { flex: '1', minWidth: '14em', padding: '4px' });
    field.value = url;
    var copy = el('button', 'Copy', { type: 'button', class: 'refwire-copy' });
    copy.addEventListener('click', function () {
      var done = function () { copy.textContent = 'Copied'; };
      if (navigator.clipboard) {
        navigator.clipboard.writeText(url).then(done, function () { field.select(); });
      } else {
        field.select();
      }
    });
    row.appendChild(field);
    row.appendChild(copy);
    if (navigator.share) {
      var share = el('button', 'Share', { type: 'button', class: 'refwire-share-button' });
      share.addEventListener('click', function () { navigator.share({ url: url }).catch(function () {}); });
      row.appendChild(share);
    }
    return row;
  }

  function showError(root, error) {
    var node = root.querySelector('.refwire-error') || root.appendChild(style(el('p', '', { class: 'refwire-error', role: 'alert' }), { color: '#b3261e' }));
    node.textContent = error.message;
  }

  function referralLink(root, options) {
    call(options.key, 'POST', '/v1/api/referral/create', { user_id: options.userId, user_name: options.userName || undefined })
      .then(function (referral) {
        root.appendChild(el('p', 'Share your link: friends who join through it count for you.'));
        root.appendChild(shareRow(referral.referral_url));
      })
      .catch(function (error) { showError(root, error); });
  }

  // The signup id is the capability to read one's own place; it is kept in this browser.
  function waitlist(root, options) {
    var storageKey = 'refwire-signup-' + options.waitlist;
    var path = '/v1/waitlists/' + encodeURIComponent(options.waitlist) + '/signups';
    var referredBy = new URLSearchParams(location.search).get('ref') || options.referralCode;

    function showPlace(signup) {
      root.textContent = '';
      root.appendChild(el('p', "You're #" + signup.position + ' on the waitlist.', { class: 'refwire-position' }));
      var url = new URL(location.href);
      url.searchParams.set('ref', signup.referral_code);
      root.appendChild(el('p', 'Move up: share your link.'));
      root.appendChild(shareRow(url.toString()));
    }

    function showForm() {
      var form = el('form', '', { class: 'refwire-join' });
      var email = el('input', '', { type: 'email', name: 'email', required: '', placeholder: 'you@example.com', 'aria-label': 'Email' });
      var name = el('input', '', { type: 'text', name: 'name', placeholder: 'Name (optional)', 'aria-label': 'Name' });
      form.appendChild(email);
      form.appendChild(name);
      form.appendChild(el('button', 'Join the waitlist', { type: 'submit' }));
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        var body = { email: email.value, name: name.value || undefined, referral_code: referredBy || undefined };
        call(options.key, 'POST', path, body)
          .then(function (signup) {
            try { localStorage.setItem(storageKey, signup.id); } catch (ignored) { /* private mode */ }
            showPlace(signup);
          })
          .catch(function (error) { showError(root, error); });
      });
      root.appendChild(form);
    }

    var saved = null;
    try { saved = localStorage.getItem(storageKey); } catch (ignored) { /* private mode */ }
    if (saved) {
      call(options.key, 'GET', path + '/' + encodeURIComponent(saved)).then(showPlace, showForm);
    } else {
      showForm();
    }
  }

  function mount(root, options) {
    if (!options.key) throw new Error('Refwire widget: a publishable key (data-key) is required');
    style(root, { maxWidth: '32em', padding: '12px 16px', border: '1px solid #d9dee5', borderRadius: '8px', fontFamily: 'system-ui, sans-serif' });
    if (options.userId) referralLink(root, options);
    if (options.waitlist) waitlist(root, options);
  }

  window.Refwire = { mount: mount };

  if (script && script.dataset.key) {
    var start = function () {
      var root = document.querySelector(script.dataset.target || '#refwire-widget');
      if (!root) {
        root = el('div', '', { id: 'refwire-widget' });
        script.parentNode.insertBefore(root, script.nextSibling);
      }
      mount(root, {
        key: script.dataset.key,
        userId: script.dataset.userId,
        userName: script.dataset.userName,
        waitlist: script.dataset.waitlist,
        referralCode: script.dataset.referralCode,
      });
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
  }
})();
