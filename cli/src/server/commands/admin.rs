//! Server commands (COMMAND, CONFIG, INFO, TIME, SAVE, SHUTDOWN) and dbkv's own (DBKV.LOCK...).

use super::Ctx;

pub fn command(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER command");
}

pub fn config(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER config");
}

pub fn info(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER info");
}

pub fn time(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER time");
}

pub fn lastsave(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER lastsave");
}

pub fn save(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER save");
}

pub fn bgsave(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER bgsave");
}

pub fn shutdown(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER shutdown");
}

pub fn lock(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER lock");
}

pub fn unlock(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER unlock");
}

pub fn extendlock(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER extendlock");
}

pub fn sync(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER sync");
}

