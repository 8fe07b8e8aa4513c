/* Forced in front of Modules/_ssl.c (gcc -include).
 *
 * Debian's pyconfig.h says <bluetooth/bluetooth.h> exists (libpython was built
 * with libbluetooth-dev), so socketmodule.h includes it for its address union.
 * _ssl.c only needs PySocketSockObject, whose layout does not involve that
 * union: read pyconfig.h first (it has an include guard) and drop the claim,
 * so the sysroot needs no Bluetooth headers.
 */
#include <pyconfig.h>
#undef HAVE_BLUETOOTH_BLUETOOTH_H
#undef HAVE_BLUETOOTH_H
