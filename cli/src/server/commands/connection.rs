//! Connection commands (PING, ECHO, SELECT, AUTH, HELLO, CLIENT, QUIT, RESET).

use super::Ctx;

pub fn ping(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER ping");
}

pub fn echo(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER echo");
}

pub fn select(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER select");
}

pub fn auth(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER auth");
}

pub fn hello(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER hello");
}

pub fn client(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER client");
}

pub fn quit(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER quit");
}

pub fn reset(ctx: &mut Ctx<'_, '_>, _argv: &[&[u8]]) {
    ctx.out.error("ERR PLACEHOLDER reset");
}

