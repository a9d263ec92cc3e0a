"""The web chat's own words (the conversation's come from flows/): labels of the page and the
widget, refusals, the return code. Every one through the catalogs, in nl, uk, ar and en."""

from __future__ import annotations

from typing import Final

from flows.i18n import N_, Translator
from flows.texts import GLOBAL_ACTIONS

UI: Final = {
    "title": N_("Complaints and confidential help"),
    "open": N_("Chat with us"),
    "close": N_("Close the chat"),
    "log": N_("Conversation"),
    "input": N_("Your message"),
    "send": N_("Send"),
    "attach": N_("Add a photo or document"),
    "menu": N_("Menu"),
    "you": N_("You"),
    "bot": N_("Klachtwijzer"),
    "online": N_("Connected."),
    "offline": N_("Offline. We will send your messages when you are back online."),
    "connecting": N_("Connecting…"),
    "code_label": N_("Do you have a return code? Type it here to continue your conversation."),
    "code_button": N_("Continue"),
    "forget": N_("Forget this device"),
    "forget_confirm": N_("This browser will forget the conversation. You can continue it later "
                         "only with your return code. Forget this device?"),
    "forgotten": N_("This browser has forgotten the conversation. With your return code you can "
                    "continue it."),
    "new_code": N_("New return code"),
    "anonymous": N_("You do not need an account or your name. This page uses no cookies and no "
                    "trackers. This browser keeps a random code and the messages not sent yet, so "
                    "that you can continue. On a shared phone or computer, choose “Forget this "
                    "device” when you are done."),
    "sending": N_("Sending…"),
    "file_too_big": N_("This file is too big. The limit is {size} MB. Please send a smaller file."),
    **{f"cmd_{name}": label for name, label in GLOBAL_ACTIONS.items() if name != "new"},
}

TOO_LONG: Final = N_("Your message is too long: {length} characters. Please send at most {limit} "
                     "characters at a time. Nothing was saved.")
TOO_FAST: Final = N_("You are sending messages very fast. Please wait a moment. We send your "
                     "message then, if this page is still open.")
FILE_TYPE: Final = N_("We cannot take this kind of document here. Please send a photo (JPEG, PNG "
                      "or WebP), a PDF, a text document or a sound recording.")
CODE_GIVEN: Final = N_("Here is your return code. Write it down and keep it safe. With this code "
                       "you can continue this conversation and read your file on another phone "
                       "or computer. Anyone who has this code can read your file and continue the "
                       "conversation.")
CODE_WRONG: Final = N_("This return code is not right. Please check it and try again.")
CODE_THROTTLED: Final = N_("Too many wrong codes were tried. Please wait 15 minutes and try again.")
CODE_OK: Final = N_("Welcome back. You can continue your conversation here. Press \"My file\" "
                    "to read your file.")
NO_CODE_YET: Final = N_("You get a return code when you have sent your complaint or request.")
FAILED: Final = N_("Sorry, something went wrong on our side. Your message was not lost: we will "
                   "try again.")


def ui_texts(t: Translator) -> dict[str, str]:
    """The labels in one language, for the page and the widget."""
    return {key: t._(text) for key, text in UI.items()}
