//! Key-space commands (DEL, EXISTS, TTLs, TYPE, SCAN, KEYS, FLUSHALL, RENAME, COPY...).

use super::Ctx;

pub fn del(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER del");
}

pub fn exists(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER exists");
}

pub fn expire(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER expire");
}

pub fn pexpire(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER pexpire");
}

pub fn expireat(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER expireat");
}

pub fn pexpireat(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER pexpireat");
}

pub fn ttl(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER ttl");
}

pub fn pttl(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER pttl");
}

pub fn expiretime(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER expiretime");
}

pub fn pexpiretime(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER pexpiretime");
}

pub fn persist(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER persist");
}

pub fn type_(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER type_");
}

pub fn scan(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER scan");
}

pub fn keys(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER keys");
}

pub fn dbsize(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER dbsize");
}

pub fn flushall(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER flushall");
}

pub fn randomkey(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER randomkey");
}

pub fn rename(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER rename");
}

pub fn renamenx(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER renamenx");
}

pub fn copy(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER copy");
}

