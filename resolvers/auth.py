"""Resolvers of sign-in."""

from api.services import auth
from api.services.commands import PasswordChange, build
from resolvers.context import Info, signed_in
from schema.auth import AuthPayload
from schema.users import RegisterInput


async def register(info: Info, input: RegisterInput) -> AuthPayload:
    ctx = info.context
    signed_in = await auth.register(
        ctx.session,
        settings=ctx.settings,
        attempt=auth.Attempt(ctx.limiter, ctx.client),
        data=input.to_command(),
    )
    return AuthPayload.from_session(signed_in)


async def login(info: Info, email: str, password: str) -> AuthPayload:
    ctx = info.context
    return AuthPayload.from_session(
        await auth.login(
            ctx.session,
            settings=ctx.settings,
            attempt=auth.Attempt(ctx.limiter, ctx.client),
            email=email,
            password=password,
        )
    )


async def refresh_token(info: Info, refresh_token: str) -> AuthPayload:
    ctx = info.context
    return AuthPayload.from_session(
        await auth.refresh(ctx.session, settings=ctx.settings, refresh_token=refresh_token)
    )


async def logout(info: Info, refresh_token: str) -> bool:
    await auth.logout(info.context.session, refresh_token=refresh_token)
    return True


async def change_password(info: Info, current_password: str, new_password: str) -> bool:
    caller = signed_in(info)
    data = build(PasswordChange, {"current_password": current_password, "new_password": new_password})
    await auth.change_password(info.context.session, actor=caller, data=data)
    return True
