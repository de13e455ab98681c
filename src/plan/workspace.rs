//! The workspace: one directory, what it knows of the deployment (pools, SIP domains),
//! and the plan. Every operation a script can ask for is a method here, so that the
//! Rhai layer only translates.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::directory::filter::escape_value;
use crate::directory::ldap::LdapOptions;
use crate::directory::{
    Directory, DirectorySpec, Entry, PageCursor, RootInfo, Scope, SearchRequest, search_all,
};
use crate::ocs::dn::Dn;
use crate::ocs::pool::find_pool;
use crate::ocs::sip::SipDerivation;
use crate::ocs::user::{Context, check_sip_unique};
use crate::ocs::{Attr, Flags, OcsUser, Pool, SipUri, UserChange};

use super::apply::{ApplyOutcome, ApplyReport, RunInfo, apply_entries};
use super::journal::{Journal, JournalError};
use super::{Plan, PlanError};

/// People who are users: in AD computers are `user`s too, and `objectCategory` tells
/// them apart. Other servers (OpenLDAP) have no objectCategory, and treat a filter on an
/// unknown class as undefined, so they get the plain class filter.
const AD_USER_FILTER: &str = "(&(objectCategory=person)(objectClass=user))";
const LDAP_USER_FILTER: &str = "(objectClass=user)";

/// A session's view of one directory, with its staged changes.
pub struct Workspace {
    dir: Arc<dyn Directory>,
    rt: tokio::runtime::Runtime,
    timeout: Duration,
    root: RootInfo,
    pools: Vec<Pool>,
    sip_domains: Vec<String>,
    plan: Plan,
    interrupt: Arc<AtomicBool>,
    /// The replicator's replica, when the command line named one.
    replica: Option<std::path::PathBuf>,
    /// SIP-uniqueness checks so far, and the index of every directory SIP address that
    /// answers them once there have been many (see `directory_holders`).
    sip_checks: Cell<usize>,
    sip_index: RefCell<Option<(std::time::Instant, SipIndex)>>,
}

/// Lower-cased SIP address -> the DNs of the directory's users that have it.
type SipIndex = HashMap<String, Vec<String>>;

/// SIP-uniqueness checks answered by a search each before one read of every address
/// answers the rest.
const SIP_INDEX_AFTER: usize = 64;

/// How long that index is trusted (a REPL session outlives a bulk job).
const SIP_INDEX_FOR: Duration = Duration::from_secs(120);

impl Workspace {
    /// Opens a workspace on `dir`: reads the root DSE, the pools and the SIP domains.
    /// `timeout` bounds every single directory operation.
    pub fn open(dir: Arc<dyn Directory>, timeout: Duration) -> Result<Workspace, PlanError> {
        Workspace::open_with(timeout, |_| async move { Ok(dir) })
    }

    /// Opens the directory `spec` names (an LDAP server is connected inside the
    /// workspace's runtime, which drives its connection from then on).
    pub fn connect(
        spec: &DirectorySpec,
        ldap: &LdapOptions,
        timeout: Duration,
    ) -> Result<Workspace, PlanError> {
        Workspace::open_with(timeout, |_| crate::directory::open(spec, ldap))
    }

    fn open_with<F, Fut>(timeout: Duration, opener: F) -> Result<Workspace, PlanError>
    where
        F: FnOnce(()) -> Fut,
        Fut: Future<Output = Result<Arc<dyn Directory>, crate::directory::DirError>>,
    {
        let mut ws = Workspace::offline()?;
        ws.dir = ws.rt.block_on(opener(()))?;
        ws.timeout = timeout;
        let dir = ws.dir.clone();
        ws.root = ws.block(async move { dir.root().await })?;
        ws.load_deployment()?;
        Ok(ws)
    }

    /// A workspace with no directory behind it (an empty in-memory one), for compiling
    /// scripts: nothing is read, and lookups find nothing.
    pub fn offline() -> Result<Workspace, PlanError> {
        let dir = crate::directory::EmbeddedDirectory::from_ldif("", "no directory")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                PlanError::Directory(crate::directory::DirError::Server(format!(
                    "cannot start the I/O runtime: {e}"
                )))
            })?;
        Ok(Workspace {
            dir: Arc::new(dir),
            rt,
            timeout: Duration::from_secs(1),
            root: RootInfo {
                default_nc: String::new(),
                config_nc: None,
                active_directory: false,
            },
            pools: Vec::new(),
            sip_domains: Vec::new(),
            plan: Plan::default(),
            interrupt: Arc::new(AtomicBool::new(false)),
            replica: None,
            sip_checks: Cell::new(0),
            sip_index: RefCell::new(None),
        })
    }

    /// Shares the flag that Ctrl-C sets, so that a wait on the directory can be abandoned.
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = flag;
    }

    /// The replicator's replica file, when the command line chose one (`--replica`, or
    /// the default for the directory); `None` leaves the choice to the replicator.
    pub fn replica_path(&self) -> Option<&std::path::Path> {
        self.replica.as_deref()
    }

    /// Sets the replicator's replica file.
    pub fn set_replica_path(&mut self, path: Option<std::path::PathBuf>) {
        self.replica = path;
    }

    /// The directory handle (for the replicator, which reads through it on its own).
    pub fn directory(&self) -> Arc<dyn Directory> {
        self.dir.clone()
    }

    /// The time allowed for each directory operation.
    pub fn op_timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs a long task (a replicator cycle) on the workspace's runtime. It has no
    /// overall timeout (the task bounds each of its own directory operations), but a set
    /// interrupt flag (Ctrl-C) abandons it: the future is dropped, so whatever it held
    /// open (a replica transaction) is rolled back.
    pub fn run_long<T>(&self, fut: impl Future<Output = T>) -> Result<T, PlanError> {
        let flag = self.interrupt.clone();
        let watch = async move {
            while !flag.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        match self
            .rt
            .block_on(async move { futures::future::select(Box::pin(fut), Box::pin(watch)).await })
        {
            futures::future::Either::Left((r, _)) => Ok(r),
            futures::future::Either::Right(_) => Err(PlanError::Interrupted),
        }
    }

    /// Stages new replicator settings (see [`Plan::stage_settings`]).
    pub fn stage_settings(
        &mut self,
        replica: &std::path::Path,
        read: &crate::ocs::ReplicatorSettings,
        after: crate::ocs::ReplicatorSettings,
    ) {
        self.plan.stage_settings(replica, read, after);
    }

    /// Takes the staged settings change out of the plan, for the runner to write.
    pub fn take_settings_change(&mut self) -> Option<super::SettingsChange> {
        self.plan.take_settings_change()
    }

    /// Runs one directory future to completion on the workspace's runtime, within the
    /// operation timeout; a set interrupt flag (Ctrl-C) abandons the wait.
    pub fn block<T>(
        &self,
        fut: impl Future<Output = Result<T, crate::directory::DirError>>,
    ) -> Result<T, PlanError> {
        let secs = self.timeout.as_secs();
        let flag = self.interrupt.clone();
        let watch = async move {
            while !flag.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let timeout = self.timeout;
        let outcome = self.rt.block_on(async move {
            let timed = tokio::time::timeout(timeout, fut);
            futures::future::select(Box::pin(timed), Box::pin(watch)).await
        });
        match outcome {
            futures::future::Either::Left((Ok(r), _)) => r.map_err(PlanError::from),
            futures::future::Either::Left((Err(_), _)) => Err(PlanError::Timeout(secs)),
            futures::future::Either::Right(_) => Err(PlanError::Interrupted),
        }
    }

    fn containers(&self) -> Vec<String> {
        let mut bases: Vec<String> = self.root.config_nc.iter().cloned().collect();
        let system = format!("CN=System,{}", self.root.default_nc);
        bases.push(system);
        bases
    }

    fn search_existing(&self, base: &str, filter: &str) -> Result<Vec<Entry>, PlanError> {
        let req = SearchRequest::subtree(base, filter);
        let dir = self.dir.clone();
        match self.block(async move { search_all(dir.as_ref(), &req).await }) {
            Err(PlanError::Directory(crate::directory::DirError::NoSuchObject(_))) => {
                Ok(Vec::new())
            }
            other => other,
        }
    }

    /// Reads the pools and SIP domains again (a long-running replicator keeps one
    /// workspace, and with it one connection, across its cycles).
    pub fn reload_deployment(&mut self) -> Result<(), PlanError> {
        self.load_deployment()
    }

    fn load_deployment(&mut self) -> Result<(), PlanError> {
        let mut pools = Vec::new();
        let mut domains: Vec<String> = Vec::new();
        for base in self.containers() {
            for e in self.search_existing(&base, "(objectClass=msRTCSIP-Pool)")? {
                let mut p = Pool::from_dn(&e.dn, e.first("dNSHostName").map(str::to_string))?;
                p.pool_type = e
                    .first("msRTCSIP-PoolType")
                    .and_then(|v| v.trim().parse().ok());
                p.version = e
                    .first("msRTCSIP-PoolVersion")
                    .and_then(|v| v.trim().parse().ok());
                p.backend = e.first("msRTCSIP-BackEndServer").map(str::to_string);
                pools.push(p);
            }
            for e in self.search_existing(&base, "(objectClass=msRTCSIP-Domain)")? {
                for d in e.get("msRTCSIP-DomainName") {
                    if !domains.iter().any(|x| x.eq_ignore_ascii_case(d)) {
                        domains.push(d.clone());
                    }
                }
            }
        }
        self.pools = pools;
        self.sip_domains = domains;
        Ok(())
    }

    /// What the workspace talks to, for headers and messages.
    pub fn describe(&self) -> String {
        self.dir.describe()
    }

    /// Bounds the plan by a script's declared reach ([`Plan::declare_reach`]).
    pub fn declare_reach(&mut self, reach: &crate::ocs::reach::Reach) {
        self.plan.declare_reach(reach);
    }

    /// The naming contexts.
    pub fn root(&self) -> &RootInfo {
        &self.root
    }

    /// The pools found in the directory.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The SIP domains the deployment serves.
    pub fn sip_domains(&self) -> &[String] {
        &self.sip_domains
    }

    /// The deployment context the rules need.
    pub fn context(&self) -> Context<'_> {
        Context {
            pools: &self.pools,
            sip_domains: &self.sip_domains,
        }
    }

    /// A pool by name, FQDN or DN.
    pub fn pool(&self, query: &str) -> Result<Pool, PlanError> {
        Ok(find_pool(query, &self.pools)?.clone())
    }

    /// The staged changes.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Forgets the staged changes.
    pub fn discard(&mut self) {
        self.plan.discard();
    }

    /// The user as it reads now: with its staged changes, if any.
    pub fn view(&self, read: &OcsUser) -> OcsUser {
        self.plan
            .staged_view(&read.dn)
            .cloned()
            .unwrap_or_else(|| read.clone())
    }

    /// Finds one user by sAMAccountName, userPrincipalName, mail, `sip:` address or DN.
    pub fn find_user(&self, id: &str) -> Result<OcsUser, PlanError> {
        let id = id.trim();
        let (req, how) =
            if id.len() > 4 && id.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sip:")) {
                (
                    self.user_request(&format!(
                        "(msRTCSIP-PrimaryUserAddress={})",
                        escape_value(id)
                    )),
                    "SIP address",
                )
            } else if id.contains('=') {
                let dn = Dn::parse(id)?;
                let mut req = self.user_request("");
                req.base = dn.as_str().to_string();
                req.scope = Scope::Base;
                (req, "DN")
            } else if id.contains('@') {
                let v = escape_value(id);
                (
                    self.user_request(&format!("(|(userPrincipalName={v})(mail={v}))")),
                    "userPrincipalName or mail",
                )
            } else {
                (
                    self.user_request(&format!("(sAMAccountName={})", escape_value(id))),
                    "sAMAccountName",
                )
            };
        let dir = self.dir.clone();
        let found = match self.block(async move { search_all(dir.as_ref(), &req).await }) {
            Err(PlanError::Directory(crate::directory::DirError::NoSuchObject(_))) => Vec::new(),
            other => other?,
        };
        match found.len() {
            0 => Err(PlanError::UserNotFound(id.to_string(), how)),
            1 => Ok(to_user(&found[0])),
            n => Err(PlanError::Ambiguous {
                id: id.to_string(),
                count: n,
                sample: found
                    .iter()
                    .take(3)
                    .map(|e| e.dn.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }

    /// A user search request below the domain NC: users (not computers) that match `filter`.
    pub fn user_request(&self, filter: &str) -> SearchRequest {
        let class = if self.root.active_directory {
            AD_USER_FILTER
        } else {
            LDAP_USER_FILTER
        };
        SearchRequest::subtree(self.root.default_nc.clone(), format!("(&{class}{filter})"))
    }

    /// Validates a user filter (RFC 4515, positions in errors) and gives its canonical text.
    pub fn check_filter(filter: &str) -> Result<String, PlanError> {
        if filter.trim().is_empty() {
            return Ok(String::new());
        }
        Ok(crate::directory::Filter::parse(filter)?.to_string())
    }

    /// One page of users; pass the returned cursor to get the next.
    pub fn users_page(
        &self,
        req: &SearchRequest,
        cursor: Option<PageCursor>,
    ) -> Result<(Vec<OcsUser>, Option<PageCursor>), PlanError> {
        let dir = self.dir.clone();
        let req = req.clone();
        let page = self.block(async move { dir.search_page(&req, cursor).await })?;
        Ok((page.entries.iter().map(to_user).collect(), page.next))
    }

    /// Gives up a user search before its last page (a loop left early), so that the
    /// directory can free what keeps it open.
    pub fn release_cursor(&self, cursor: &PageCursor) {
        self.dir.release(cursor);
    }

    fn stage(&mut self, read: &OcsUser, changes: Vec<UserChange>) {
        let mut after = self.view(read);
        after.apply(&changes);
        let warnings = after
            .problems(&self.context())
            .iter()
            .map(ToString::to_string)
            .collect();
        self.plan.stage(read, &changes, warnings);
    }

    /// Stages values that the directory held before (undo): no rule is asked, since
    /// they were there already.
    pub(crate) fn stage_restore(&mut self, read: &OcsUser, changes: Vec<UserChange>) {
        self.stage(read, changes);
    }

    fn holders_of(&self, sip: &SipUri) -> Result<Vec<String>, PlanError> {
        let key = sip.key();
        let in_dir = self.directory_holders(sip, &key)?;
        let holds = |u: &OcsUser| u.sip().is_some_and(|s| s.to_lowercase() == key);
        // The directory's holders, corrected for what the plan changes.
        let mut holders: Vec<String> = in_dir
            .into_iter()
            .filter(|dn| self.plan.staged_view(dn).is_none_or(holds))
            .collect();
        holders.extend(
            self.plan
                .staged_holders(&key)
                .filter(|u| holds(u))
                .map(|u| u.dn.clone()),
        );
        Ok(holders)
    }

    /// The DNs of the directory's users whose SIP address is `sip`. The first few checks
    /// of a session search for the address; from then on (a bulk job) one paged read of
    /// every address answers the rest, instead of a round trip per user. The index is as
    /// fresh as that read, as each search was as fresh as its own moment.
    fn directory_holders(&self, sip: &SipUri, key: &str) -> Result<Vec<String>, PlanError> {
        let checks = self.sip_checks.get() + 1;
        self.sip_checks.set(checks);
        if checks > SIP_INDEX_AFTER {
            let fresh = self
                .sip_index
                .borrow()
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() < SIP_INDEX_FOR);
            if !fresh {
                let at = std::time::Instant::now();
                let index = self.read_sip_index()?;
                *self.sip_index.borrow_mut() = Some((at, index));
            }
            if let Some((_, index)) = self.sip_index.borrow().as_ref() {
                return Ok(index.get(key).cloned().unwrap_or_default());
            }
        }
        let req = self.user_request(&format!(
            "(msRTCSIP-PrimaryUserAddress={})",
            escape_value(&sip.to_string())
        ));
        let dir = self.dir.clone();
        let found = self.block(async move { search_all(dir.as_ref(), &req).await })?;
        Ok(found.into_iter().map(|e| e.dn).collect())
    }

    fn read_sip_index(&self) -> Result<SipIndex, PlanError> {
        let attr = Attr::PrimaryUserAddress.name();
        let mut req = self.user_request(&format!("({attr}=*)"));
        req.attrs = vec![attr.to_string()];
        let mut index = SipIndex::new();
        let mut cursor = None;
        loop {
            let dir = self.dir.clone();
            let r = req.clone();
            let page = self.block(async move { dir.search_page(&r, cursor).await })?;
            for e in page.entries {
                for v in e.get(attr) {
                    index
                        .entry(v.to_lowercase())
                        .or_default()
                        .push(e.dn.clone());
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(index),
            }
        }
    }

    /// Enables a user with `sip` (or the address derived from mail) on `pool`.
    pub fn enable(
        &mut self,
        read: &OcsUser,
        sip: Option<&str>,
        pool: &Pool,
    ) -> Result<(), PlanError> {
        let now = self.view(read);
        let sip = match sip {
            Some(s) => SipUri::parse(s)?,
            None => SipUri::derive(
                &SipDerivation::Mail,
                now.label(),
                now.first("mail"),
                None,
                None,
                None,
                None,
            )?,
        };
        check_sip_unique(&sip, &now.dn, &self.holders_of(&sip)?)?;
        let changes = now.enable(&sip, pool, &self.context())?;
        self.stage(read, changes);
        Ok(())
    }

    /// Derives a SIP address for a user without staging anything.
    pub fn derive_sip(&self, read: &OcsUser, how: &SipDerivation) -> Result<SipUri, PlanError> {
        let u = self.view(read);
        Ok(SipUri::derive(
            how,
            u.label(),
            u.first("mail"),
            u.first("userPrincipalName"),
            u.first("givenName"),
            u.first("sn"),
            u.sam(),
        )?)
    }

    /// Temporarily disables a user.
    pub fn disable(&mut self, read: &OcsUser) -> Result<(), PlanError> {
        let changes = self.view(read).disable()?;
        self.stage(read, changes);
        Ok(())
    }

    /// Removes every OCS attribute of a user.
    pub fn remove(&mut self, read: &OcsUser) -> Result<(), PlanError> {
        let changes = self.view(read).remove();
        self.stage(read, changes);
        Ok(())
    }

    /// Moves a user to `pool`.
    pub fn move_to(&mut self, read: &OcsUser, pool: &Pool) -> Result<(), PlanError> {
        let changes = self.view(read).move_to(pool, &self.context())?;
        self.stage(read, changes);
        Ok(())
    }

    /// Writes a user's flags (bits OR-ed in).
    pub fn set_flags(&mut self, read: &OcsUser, flags: Flags) -> Result<(), PlanError> {
        let changes = self.view(read).set_flags(flags)?;
        self.stage(read, changes);
        Ok(())
    }

    /// Changes a user's SIP address.
    pub fn set_sip(&mut self, read: &OcsUser, sip: &str) -> Result<(), PlanError> {
        let now = self.view(read);
        let sip = SipUri::parse(sip)?;
        check_sip_unique(&sip, &now.dn, &self.holders_of(&sip)?)?;
        let changes = now.set_sip(&sip, &self.context())?;
        self.stage(read, changes);
        Ok(())
    }

    /// Sets a Boolean attribute (federation, remote access).
    pub fn set_bool(&mut self, read: &OcsUser, attr: Attr, value: bool) -> Result<(), PlanError> {
        let changes = self.view(read).set_bool(attr, value)?;
        self.stage(read, changes);
        Ok(())
    }

    /// Sets (or with `None` clears) a user's line URI.
    pub fn set_line(&mut self, read: &OcsUser, line: Option<&str>) -> Result<(), PlanError> {
        let changes = self.view(read).set_line(line)?;
        self.stage(read, changes);
        Ok(())
    }

    /// Sets a user's archiving bits (msRTCSIP-ArchivingEnabled).
    pub fn set_archiving(&mut self, read: &OcsUser, value: i64) -> Result<(), PlanError> {
        let changes = self.view(read).set_archiving(value)?;
        self.stage(read, changes);
        Ok(())
    }

    /// Writes a raw msRTCSIP-* attribute through its rule.
    pub fn set_raw(
        &mut self,
        read: &OcsUser,
        name: &str,
        values: Vec<String>,
    ) -> Result<(), PlanError> {
        let now = self.view(read);
        if let (Some(Attr::PrimaryUserAddress), Some(v)) = (Attr::from_name(name), values.first()) {
            let sip = SipUri::parse(v)?;
            check_sip_unique(&sip, &now.dn, &self.holders_of(&sip)?)?;
        }
        let changes = now.set_raw(name, values, &self.context())?;
        self.stage(read, changes);
        Ok(())
    }

    /// Writes the plan to the directory with at most `concurrency` operations in flight,
    /// journalling every entry before it is written (see [`super::apply`]), then the
    /// replicator's settings change through `write_settings`; `progress` is called after
    /// each entry. A journal that fails before the first write is an error and leaves the
    /// plan staged; otherwise the plan is emptied and the report says what landed.
    pub fn apply(
        &mut self,
        journal: &mut Journal,
        info: &RunInfo,
        concurrency: usize,
        progress: &mut dyn FnMut(usize, usize),
        write_settings: &mut dyn FnMut(&super::SettingsChange) -> ApplyOutcome,
    ) -> Result<ApplyReport, JournalError> {
        // What is applied changes the directory's SIP addresses.
        self.sip_index.borrow_mut().take();
        self.sip_checks.set(0);
        let entries: Vec<_> = self.plan.entries().cloned().collect();
        journal.begin(info.begin(entries.len(), self.plan.change_count()));
        let dir = self.dir.clone();
        let mut report = self.rt.block_on(apply_entries(
            dir.as_ref(),
            entries,
            journal,
            concurrency,
            self.timeout,
            progress,
        ))?;
        if let Some(change) = self.plan.take_settings_change() {
            let outcome = match &report.journal_error {
                Some(e) => ApplyOutcome::Failed(format!("not written: {e}")),
                None => {
                    journal.settings_intent(&change);
                    match journal.sync() {
                        Ok(()) => {
                            let outcome = write_settings(&change);
                            journal.settings_outcome(&change, &outcome);
                            outcome
                        }
                        Err(e) => {
                            let outcome = ApplyOutcome::Failed(format!("not written: {e}"));
                            report.journal_error = Some(std::sync::Arc::new(e));
                            outcome
                        }
                    }
                }
            };
            report.settings = Some((change, outcome));
        }
        if report.journal_error.is_none() {
            journal.end(report.applied(), report.conflicted(), report.failed());
            if let Err(e) = journal.sync() {
                report.journal_error = Some(std::sync::Arc::new(e));
            }
        }
        self.plan.discard();
        Ok(report)
    }
}

/// The OCS view of a directory entry.
pub fn to_user(e: &Entry) -> OcsUser {
    OcsUser::from_pairs(
        &e.dn,
        e.attributes()
            .iter()
            .map(|a| (a.name.as_str(), a.values.as_slice())),
    )
}
