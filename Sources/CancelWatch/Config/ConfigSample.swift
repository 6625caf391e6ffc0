import Foundation

extension CancelWatchConfig {
    /// A commented config for real accounts: the one the README shows. Secrets come from
    /// the environment (``sampleEnvironmentVariables``).
    public static let sample: String = """
        # cancelwatch.yaml: what to watch and where alerts go.
        # Values may use ${VAR} (from the environment; an unset one is an error),
        # ${VAR:-fallback}, and $${ for a literal "${". Relative paths are relative
        # to this file. Durations: 500ms, 45s, 15m, 2h, 1d, 1h30m.

        state: ./cancelwatch.sqlite      # tracked requests, outbox, delivery ledger
        rules: [./rules]                 # rule files, or directories of *.rules files
        timezone: Europe/Moscow          # for hour/weekday, quiet windows, times in alerts
        listen: 127.0.0.1:9464           # optional: /metrics, /healthz and the status page
        # auth: {token: "${STATUS_TOKEN}"} # the status page's token: required when listen is
                                         # not loopback; lets signed-in users answer requests

        sources:
          # Ozon Seller API (rFBS conditional cancellations).
          - name: ozon-main
            kind: ozon
            client_id: "${OZON_CLIENT_ID}"
            api_key: "${OZON_API_KEY}"
            poll_interval: 60s             # default 60s, at least 1s
            # timeout: 30s                 # per HTTP request
            # base_url: https://api-seller.ozon.ru

          # Xiaohongshu (RED) Ark open platform.
          - name: red-shop
            kind: red                      # or: xiaohongshu
            app_key: "${RED_APP_KEY}"
            app_secret: "${RED_APP_SECRET}"
            logistics: [red_auto, red_box] # the modes this shop uses; default [red_auto]
            max_audit_time_unit: milliseconds   # or seconds, if your alerts come far too early
            # page_size: 50                # 1 to 100
            # base_url: https://ark.xiaohongshu.com

        sinks:
          - name: console
            kind: stdout
            format: text                   # or json: one object per line

          # Your own endpoint: POST of a JSON body, signed with the secret
          # (header X-Cancelwatch-Signature: t=<unix time>,v1=<hex HMAC-SHA256>).
          - name: ops
            kind: webhook
            url: https://hooks.example.com/cancelwatch
            secret: "${WEBHOOK_SECRET}"
            timeout: 10s
            # headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
            # retry: {max_attempts: 0, initial_delay: 1s, max_delay: 5m}   # 0: until delivered

          # A Telegram chat (slack, feishu, dingtalk and wecom work the same way,
          # with their own incoming-webhook URL; feishu and dingtalk sign with 'secret').
          - name: team-chat
            kind: webhook
            format: telegram
            url: "https://api.telegram.org/bot${TELEGRAM_BOT_TOKEN}/sendMessage"
            chat_id: "${TELEGRAM_CHAT_ID}"

          # Email over SMTP: smtp://host:587 uses STARTTLS (required);
          # smtps://host:465 is TLS from the start. tls: none only if you write it.
          - name: owner-mail
            kind: email
            url: smtp://smtp.example.com:587
            username: "${SMTP_USER}"
            password: "${SMTP_PASSWORD}"
            from: "cancelwatch <watch@example.com>"
            to: [owner@example.com]
            # cc: [ops@example.com]
            subject: "[cancelwatch] {{severity}}: {{rule}} {{order}}"

        # Alerts about cancelwatch itself: source_down after down_after failed
        # polls in a row, or no successful poll for silent_after (naming the
        # nearest deadline at risk), then source_up.
        health:
          notify: [ops, team-chat]
          down_after: 3
          # silent_after: 20m   # default: down_after poll intervals + 15m

        """

    /// The variables ``sample`` reads.
    public static let sampleEnvironmentVariables = [
        "OZON_CLIENT_ID", "OZON_API_KEY", "RED_APP_KEY", "RED_APP_SECRET", "WEBHOOK_SECRET", "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_CHAT_ID", "SMTP_USER", "SMTP_PASSWORD",
    ]
}
