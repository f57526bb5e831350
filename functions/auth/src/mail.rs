//! Mail through SES (the emulator locally): verification, reset, invitation and notice mails.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use lectern_shared::aws::{LazyClient, LazySdk};

/// Sends Lectern's mails through SES; the client is made when the first mail goes out.
#[derive(Debug, Clone)]
pub struct Mailer {
    client: LazyClient<aws_sdk_sesv2::Client>,
    from: String,
    base_url: String,
}

impl Mailer {
    /// Mails from `from` with links under `base_url`, through a ready client.
    pub fn new(
        client: aws_sdk_sesv2::Client,
        from: impl Into<String>,
        base_url: impl Into<String>,
    ) -> Self {
        Self {
            client: LazyClient::ready(client),
            from: from.into(),
            base_url: base_url.into(),
        }
    }

    /// Mails from `from` with links under `base_url`, through a client made from `sdk` when
    /// the first mail goes out.
    pub fn lazy(
        sdk: impl Into<LazySdk>,
        from: impl Into<String>,
        base_url: impl Into<String>,
    ) -> Self {
        Self {
            client: LazyClient::new(sdk.into(), aws_sdk_sesv2::Client::new),
            from: from.into(),
            base_url: base_url.into(),
        }
    }

    async fn send(&self, to: &str, subject: &str, text: String) -> anyhow::Result<()> {
        let content = |data: &str| Content::builder().data(data).charset("UTF-8").build();
        let message = Message::builder()
            .subject(content(subject).context("building the subject")?)
            .body(
                Body::builder()
                    .text(content(&text).context("building the body")?)
                    .build(),
            )
            .build();
        self.client
            .get()
            .await
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .context("sending mail through SES")?;
        Ok(())
    }

    /// Sends and logs a failure instead of failing the request: the account change it
    /// accompanies has committed, and the user can ask for the mail again.
    async fn send_logged(&self, to: &str, subject: &str, text: String) {
        if let Err(err) = self.send(to, subject, text).await {
            tracing::error!(error = ?err, subject, "could not send mail");
        }
    }

    pub fn verification_link(&self, token: &str) -> String {
        format!("{}/api/v1/auth/verify-email/{token}", self.base_url)
    }

    pub fn reset_link(&self, token: &str) -> String {
        format!("{}/reset-password?token={token}", self.base_url)
    }

    pub async fn send_verification(&self, to: &str, token: &str) {
        let link = self.verification_link(token);
        let text = format!(
            "Welcome to Lectern!\n\nConfirm your email address by opening this link within 24 hours:\n\n{link}\n\n\
             If you did not create an account, ignore this mail."
        );
        self.send_logged(to, "Confirm your email address", text)
            .await;
    }

    pub async fn send_account_exists(&self, to: &str) {
        let link = format!("{}/forgot-password", self.base_url);
        let text = format!(
            "Someone (perhaps you) tried to create a Lectern account with this address, but you already have one.\n\n\
             If you forgot your password, reset it here:\n\n{link}\n\nOtherwise, ignore this mail."
        );
        self.send_logged(to, "You already have a Lectern account", text)
            .await;
    }

    pub async fn send_reset(&self, to: &str, token: &str) {
        let link = self.reset_link(token);
        let text = format!(
            "Reset your Lectern password by opening this link within 30 minutes:\n\n{link}\n\n\
             Resetting signs you out on every device. If you did not ask for this, ignore this mail."
        );
        self.send_logged(to, "Reset your password", text).await;
    }

    /// The mail an invited identity sets its password with. Fails when SES refuses it: the
    /// worker sends it before committing, so the event comes back and nothing is kept.
    pub async fn send_invitation(
        &self,
        invitation: &Invitation<'_>,
        token: &str,
        valid_for: Duration,
    ) -> anyhow::Result<()> {
        let link = self.reset_link(token);
        let who = match invitation.invited_by {
            Some(inviter) => format!("{inviter} has invited you to Lectern."),
            None => "You have been invited to Lectern.".to_string(),
        };
        let text = format!(
            "Hello {name},\n\n{who}\n\nChoose your password by opening this link within {valid_for}:\n\n{link}\n\n\
             You will sign in with this address, {to}. If you did not expect this invitation, ignore this mail.",
            name = invitation.first_name,
            valid_for = spoken(valid_for),
            to = invitation.to,
        );
        self.send(invitation.to, "You are invited to Lectern", text)
            .await
    }

    pub async fn send_password_changed(&self, to: &str) {
        let text =
            "Your Lectern password was just changed. If this was not you, reset it right away \
                    and contact your administrator."
                .to_string();
        self.send_logged(to, "Your password was changed", text)
            .await;
    }
}

/// Who an invitation mail goes to, and who sent it (their sign-in address) when known.
#[derive(Debug, Clone, Copy)]
pub struct Invitation<'a> {
    pub to: &'a str,
    pub first_name: &'a str,
    pub invited_by: Option<&'a str>,
}

/// A lifetime as a mail says it: whole days when it is whole days, hours otherwise.
fn spoken(duration: Duration) -> String {
    let hours = duration.as_secs().div_ceil(3600).max(1);
    let (n, unit) = if hours.is_multiple_of(24) {
        (hours / 24, "day")
    } else {
        (hours, "hour")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_lifetime_reads_in_days_or_hours() {
        let hours = |h: u64| super::spoken(Duration::from_secs(h * 3600));
        assert_eq!(hours(168), "7 days");
        assert_eq!(hours(24), "1 day");
        assert_eq!(hours(36), "36 hours");
        assert_eq!(hours(1), "1 hour");
    }
}
